// Package l7api is the generated Go code for weft.l7.v1: the routes, L7
// authorization policies and traffic policies istiod-lite sends to
// waypoints over delta xDS.
package l7api

// Type URLs of the weft.l7.v1 resources on the xDS stream.
const (
	RouteConfigType   = "type.googleapis.com/weft.l7.v1.RouteConfig"
	L7PolicyType      = "type.googleapis.com/weft.l7.v1.L7Policy"
	TrafficPolicyType = "type.googleapis.com/weft.l7.v1.TrafficPolicy"
)
