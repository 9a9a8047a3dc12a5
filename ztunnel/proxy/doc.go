// Package proxy is ztunnel's data path. For every enrolled pod it serves the
// pod's three in-pod listeners:
//
//   - 15001 outbound: reads the original destination (SO_ORIGINAL_DST),
//     resolves it from the xDS state (a service VIP picks a healthy
//     endpoint), and carries the connection over HBONE with the pod's own
//     identity to the endpoint's 15008 or to the waypoint (authority = the
//     original VIP:port), or as plain TCP for a destination outside the mesh.
//   - 15008 inbound HBONE: verifies the peer, applies L4 authorization for
//     the destination workload (401 on deny), connects to the application
//     from the client's address and splices.
//   - 15006 inbound plaintext: the same without a peer identity, so a STRICT
//     PeerAuthentication (a DENY of connections without a principal) and a
//     workload's waypoint refuse it.
//
// Authorization is decided when a connection opens and is never cached for
// another connection. Every change of the xDS state re-checks the open
// inbound connections of each pod (policies, the destination's policy list
// and its waypoint), and those now denied are closed, as Istio's ztunnel
// does: the HBONE stream is reset or the plaintext connection closed, the
// application's connection is closed, and the access log records "connection
// closed due to policy change" with the reason.
//
// ztunnel caps the connections it carries (caps.go): per pod and
// direction (MaxConnsPerPod) and per node (MaxConnsPerNode). A connection
// over a cap is refused at once: the application's connection is reset,
// an HBONE CONNECT is answered 503; refusals are counted in
// weft_ztunnel_connections_refused_total{direction,reason} and logged at
// most once a second per pod.
//
// The sockets ztunnel shares with applications close with a reset unless
// the connection ended cleanly (linger.go), so a crashed ztunnel never
// ends an application's connection with a clean end of stream.
//
// The proxy fails closed: without a certificate or configuration for a pod,
// its connections wait a bounded time and are then refused, never sent in
// plaintext.
package proxy
