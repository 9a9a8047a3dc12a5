package identitytest

import (
	"crypto/tls"
	"fmt"

	"github.com/weftmesh/weft/pkg/identity"
)

// ServerTLS returns a mesh server TLS configuration (identity.ServerConfig)
// that presents a new certificate for id and trusts only this CA.
func (ca *CA) ServerTLS(id string) (*tls.Config, error) {
	sid, err := identity.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("server identity: %w", err)
	}
	cert := ca.MustIssue(sid)
	return identity.ServerConfig(identity.ServerOptions{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert.TLSCertificate(), nil },
		TrustDomain:    identity.DefaultTrustDomain,
		Roots:          identity.StaticRoots(ca.Pool()),
	})
}

// ClientTLS returns a mesh client TLS configuration (identity.ClientConfig)
// that presents cert, trusts only this CA and accepts a server presenting
// one of the expected SPIFFE identities.
func (ca *CA) ClientTLS(cert *identity.Certificate, expected ...string) (*tls.Config, error) {
	want := make([]identity.ID, 0, len(expected))
	for _, s := range expected {
		id, err := identity.ParseID(s)
		if err != nil {
			return nil, fmt.Errorf("expected identity: %w", err)
		}
		want = append(want, id)
	}
	return identity.ClientConfig(identity.ClientOptions{
		GetClientCertificate: identity.StaticCertificate(cert),
		TrustDomain:          identity.DefaultTrustDomain,
		Roots:                identity.StaticRoots(ca.Pool()),
		Expected:             want,
	})
}
