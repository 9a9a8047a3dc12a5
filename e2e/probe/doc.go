// Package probe is the lab's test client for faults and attacks, run
// inside a pod's network namespace by the e2e suites.
//
// Stream drives many concurrent connections to raw TCP echo servers (the
// echo workload's port 9000), each sending a seeded pseudo-random payload
// of a random size and checking that exactly the same bytes come back, and
// classifies every connection: ok, failed with an error the client saw
// (refused, reset, timeout), truncated (a clean end of stream before every
// byte came back) or corrupted (different bytes). A mesh must never produce
// the last two.
//
// HBONE connects straight to a workload's HBONE port (15008) with a chosen
// client certificate and asks for a CONNECT tunnel with chosen headers, and
// reports how far it got: the TLS handshake, the CONNECT answer, or data
// from the application behind it.
//
// CSR asks the mesh CA for a certificate with a chosen token and identity,
// optionally on behalf of a pod as a node proxy does.
package probe
