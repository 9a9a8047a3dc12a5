// Package ca is istiod-lite's certificate authority. It serves Istio's
// istio.v1.auth.IstioCertificateService/CreateCertificate RPC: callers
// authenticate with a projected service-account token (checked through the
// TokenReview API for audience istio-ca) and receive a SPIFFE certificate
// for their own service account, or, for the ztunnel service account only,
// for a pod on the caller's own node named in the ImpersonatedIdentity
// metadata. It loads or creates the root of trust (the plug-in Secret
// cacerts, else a self-signed root kept in Secret istio-ca-secret), publishes
// the root as ConfigMap istio-ca-root-cert in every namespace, and issues
// istiod-lite's own serving certificate.
package ca
