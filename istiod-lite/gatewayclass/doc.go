// Package gatewayclass keeps the istio-waypoint GatewayClass in the
// cluster: istiod-lite creates it when it is absent and reports it
// Accepted, as Istio's control plane does for its built-in classes, so
// that the install never applies a GatewayClass in the same apply as the
// Gateway API CRDs.
package gatewayclass
