// Package upstream carries the waypoint's traffic to the chosen endpoint:
// an HBONE stream from a pooled, multiplexed mTLS connection to the
// endpoint's ztunnel (pod IP:15008, authority pod IP:target port),
// presenting the waypoint's certificate and requiring the endpoint's
// identity; a plain TCP connection for an endpoint outside the mesh. On top
// of that Dialer it offers HTTP/1.1 and HTTP/2 (h2c over the tunnel)
// round trippers.
package upstream
