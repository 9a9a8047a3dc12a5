// Package hbone3 is HBONE's second transport: HTTP/3 CONNECT inside QUIC's
// TLS 1.3, with the same SPIFFE identities and checks as the HTTP/2
// transport in pkg/hbone, and CONNECT-UDP (RFC 9298) with HTTP datagrams
// (RFC 9297) to carry UDP flows.
//
// A Server serves both kinds of tunnel on one UDP socket (15008 beside the
// TCP HBONE listener). A Pool dials QUIC connections keyed like hbone's
// (source identity, destination identities, address, source IP) and opens
// streams and UDP flows on them. A Dialer chooses QUIC for destinations
// that advertise it and falls back to HTTP/2 over TCP when UDP to the
// destination is blocked, remembering the failure for a while.
//
// The package uses quic-go's http3 for framing, QPACK and datagrams; the
// mesh rules (mutual TLS 1.3 with AES-GCM, the server's identity checked
// against the expected list, CONNECT-only, the target in the authority or
// the RFC 9298 path) are this package's.
package hbone3
