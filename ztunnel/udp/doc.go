// Package udp carries enrolled pods' UDP through the mesh with CONNECT-UDP
// (RFC 9298) over ztunnel's QUIC transport.
//
// Outbound: the pod's capture rules (cni/iptables, CaptureUDP) TPROXY the
// application's UDP to a transparent listener on 127.0.0.1:15005 inside
// the pod's netns. The first datagram of a flow (keyed by its 5-tuple)
// resolves the original destination in WDS like TCP does (a service VIP
// picks an endpoint and maps the port); a destination in the mesh that
// advertises QUIC gets a CONNECT-UDP flow to its ztunnel, a destination
// outside the mesh is reached directly from the pod's netns (source port
// translated), and anything else is dropped and counted. Replies reach the
// application from the original destination address and port, written
// through a raw socket (no socket could bind that address when the pod
// holds the same port on its wildcard address).
//
// Inbound (Service.HandleUDP, the tunnel server's CONNECT-UDP hook): the
// target must be the receiving pod; L4 authorization applies as for TCP
// (pkg/l4authz with the peer's verified identity), a refusal answers 403;
// datagrams reach the application from the client pod's IP (a transparent
// socket in the destination netns; the port is not preserved, as for TCP).
//
// Flows expire after IdleTimeout without traffic either way, and each pod
// has at most MaxFlowsPerPod. Every socket but the raw one carries
// ztunnel's mark 0x539.
package udp
