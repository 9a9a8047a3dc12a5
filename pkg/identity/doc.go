// Package identity implements workload identity for the mesh: SPIFFE IDs of
// the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>, leaf
// keys and certificate signing requests, certificate chain verification
// against a trust domain and an expected identity, and the TLS configurations
// that mesh clients and servers use (TLS 1.3, ALPN h2, AES-GCM, no SNI, peer
// SPIFFE identity checked against the trust bundle on every handshake).
//
// Everything here is pure computation on certificates and keys; fetching and
// rotating certificates is done by package certmgr.
package identity
