// Package tcpproxy forwards the waypoint's non-HTTP flows: it applies the
// destination's L4 authorization (pkg/l4authz) and the waypoint's L7
// policies as far as they concern a TCP connection, picks an endpoint of the
// destination Service, opens an upstream tunnel to it and copies bytes both
// ways with TCP's half-close.
package tcpproxy
