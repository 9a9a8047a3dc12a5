// Package caclient is the client of Istio's certificate RPC,
// istio.v1.auth.IstioCertificateService/CreateCertificate, as served by
// istiod-lite: it sends a CSR with a projected service-account token and,
// for a node proxy, the ImpersonatedIdentity metadata. A *Client is a
// certmgr.Fetcher.
package caclient
