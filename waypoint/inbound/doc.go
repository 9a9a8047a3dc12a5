// Package inbound is the waypoint's HBONE listener (port 15008): it
// presents the waypoint's own SPIFFE certificate, takes the client
// ztunnel's verified peer identity as the source principal, resolves the
// CONNECT authority (a Service VIP:port or a pod IP:port) to a destination
// bound to this waypoint, chooses the protocol (the port's declared one,
// else sniffed from the first bytes) and hands the tunnel to the HTTP or
// the TCP proxy.
package inbound
