// Package l7 translates the Kubernetes configuration that applies at
// waypoints — Gateway API HTTPRoutes and GRPCRoutes whose parent is a
// Service, AuthorizationPolicies with targetRefs, Istio DestinationRule
// traffic policies, and Weft's weft.dev/* route annotations — into the
// weft.l7.v1 resources (RouteConfig, L7Policy, TrafficPolicy) that
// istiod-lite serves to waypoints over delta xDS.
//
// The Controller keeps the inputs, recomputes only the resources an input
// change touches, and is an xDS source. Invalid input is never served: the
// object is skipped (or, for authorization policies, the invalid part is
// handled the strict way) and a Reporter is told which field was wrong.
// docs/waypoint-config.md documents every mapping and annotation.
package l7
