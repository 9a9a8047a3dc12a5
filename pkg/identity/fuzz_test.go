package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

// FuzzParseCertificate feeds key and chain PEM as an operator's CA Secret
// or a certificate file would carry them: parsing never panics, and a
// chain that parses names the identity its leaf carries.
func FuzzParseCertificate(f *testing.F) {
	ca := identitytest.NewCA("fuzz")
	c := ca.MustIssue(identity.MustParseID("spiffe://cluster.local/ns/demo/sa/client"))
	keyPEM, err := identity.EncodeKey(c.Key)
	if err != nil {
		f.Fatal(err)
	}
	chainPEM := append(identity.EncodeCertificate(c.Leaf), ca.RootPEM()...)
	f.Add(keyPEM, chainPEM)
	f.Add(keyPEM, ca.RootPEM())
	f.Add([]byte{}, []byte{})
	f.Add(keyPEM[:len(keyPEM)/2], chainPEM[:len(chainPEM)/2])
	f.Add(identitytest.PEMBlock("PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x00}), identitytest.PEMBlock("CERTIFICATE", []byte{0x30, 0x00}))
	f.Fuzz(func(t *testing.T, keyPEM, chainPEM []byte) {
		_, _ = identity.ParseKey(keyPEM)
		_, _ = identity.ParseCertificates(chainPEM)
		cert, err := identity.ParseCertificate(keyPEM, chainPEM)
		if err != nil {
			return
		}
		if cert.Leaf == nil || cert.Key == nil {
			t.Fatalf("parsed certificate without leaf or key: %+v", cert)
		}
		id, err := identity.IDFromCertificate(cert.Leaf)
		if err != nil {
			t.Fatalf("parsed certificate whose leaf has no identity: %v", err)
		}
		if id != cert.ID {
			t.Fatalf("ID %v, leaf says %v", cert.ID, id)
		}
	})
}

// FuzzVerifyChain feeds a peer's certificate chain (DER, as a TLS peer
// sends it, split on a separator): verification never panics, and what it
// accepts is in the trust domain and among the expected identities.
func FuzzVerifyChain(f *testing.F) {
	ca := identitytest.NewCA("fuzz")
	want := identity.MustParseID("spiffe://cluster.local/ns/demo/sa/client")
	now := time.Now()
	for _, id := range []string{
		"spiffe://cluster.local/ns/demo/sa/client",
		"spiffe://cluster.local/ns/demo/sa/other",
		"spiffe://evil.example/ns/demo/sa/client",
	} {
		c, err := ca.Issue(identity.MustParseID(id), now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.Leaf.Raw, []byte{})
		f.Add(c.Leaf.Raw, ca.Root.Raw)
	}
	f.Add([]byte{0x30, 0x00}, []byte{})
	roots := ca.Pool()
	f.Fuzz(func(t *testing.T, leafDER, restDER []byte) {
		chain, err := identity.ParseCertificates(append(identitytest.PEMBlock("CERTIFICATE", leafDER), identitytest.PEMBlock("CERTIFICATE", restDER)...))
		if err != nil || len(chain) == 0 {
			return
		}
		id, err := identity.VerifyChain(chain, identity.VerifyOptions{Roots: roots, TrustDomain: "cluster.local", Expected: []identity.ID{want}, Now: now})
		if err != nil {
			return
		}
		if id != want || !strings.HasPrefix(id.String(), "spiffe://cluster.local/") {
			t.Fatalf("accepted %v, want only %v", id, want)
		}
	})
}
