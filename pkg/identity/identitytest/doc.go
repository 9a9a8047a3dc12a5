// Package identitytest provides an in-memory certificate authority for tests
// of code that uses mesh identities: it issues SPIFFE workload certificates
// with chosen validity periods and signs CSRs, without any network or API.
package identitytest
