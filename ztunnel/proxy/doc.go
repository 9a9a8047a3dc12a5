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
// The proxy fails closed: without a certificate or configuration for a pod,
// its connections wait a bounded time and are then refused, never sent in
// plaintext.
package proxy
