// Package flow describes one connection the waypoint received over HBONE:
// who sent it (the client ztunnel's peer identity and the original client
// address) and where it was going (the Service or workload resolved from the
// CONNECT authority). The inbound listener builds it; the HTTP and TCP
// proxies read it.
package flow
