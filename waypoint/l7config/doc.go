// Package l7config is the waypoint's L7 configuration received over xDS:
// the weft.l7.v1 RouteConfig, L7Policy and TrafficPolicy resources. Store
// implements the xDS client's Handler for those three type URLs: it decodes
// and checks every resource of a response, compiles the whole resulting
// configuration (router, L7 policy engine, per-route retry policies and rate
// limiters), and only then swaps it in. A response that fails any step is
// rejected with an error naming the resource and the field, which the client
// returns to istiod-lite as a NACK; the last good configuration stays.
package l7config
