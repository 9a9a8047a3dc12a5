package identity_test

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

func TestVerifyChain(t *testing.T) {
	ca := identitytest.NewCA("test")
	otherCA := identitytest.NewCA("other")
	now := time.Now()
	issue := func(ca *identitytest.CA, id identity.ID, nb, na time.Time) []*x509.Certificate {
		c, err := ca.Issue(id, nb, na)
		if err != nil {
			t.Fatal(err)
		}
		return []*x509.Certificate{c.Leaf}
	}
	app := testID
	otherTD := identity.MustParseID("spiffe://other.domain/ns/demo/sa/app")
	valid := issue(ca, app, now.Add(-time.Hour), now.Add(time.Hour))

	tests := []struct {
		name     string
		chain    []*x509.Certificate
		roots    *x509.CertPool
		td       string
		expected []identity.ID
		wantErr  error
	}{
		{name: "valid any identity", chain: valid},
		{name: "valid expected identity", chain: valid, expected: []identity.ID{identity.MustParseID("spiffe://cluster.local/ns/x/sa/y"), app}},
		{name: "chain with root appended", chain: append(append([]*x509.Certificate(nil), valid...), ca.Root)},
		{name: "wrong trust domain", chain: issue(ca, otherTD, now.Add(-time.Hour), now.Add(time.Hour)), wantErr: identity.ErrWrongTrustDomain},
		{name: "wrong identity", chain: valid, expected: []identity.ID{identity.MustParseID("spiffe://cluster.local/ns/demo/sa/db")}, wantErr: identity.ErrUnexpectedIdentity},
		{name: "expired", chain: issue(ca, app, now.Add(-2*time.Hour), now.Add(-time.Hour)), wantErr: identity.ErrExpired},
		{name: "not yet valid", chain: issue(ca, app, now.Add(time.Hour), now.Add(2*time.Hour)), wantErr: identity.ErrNotYetValid},
		{name: "wrong root", chain: issue(otherCA, app, now.Add(-time.Hour), now.Add(time.Hour)), wantErr: identity.ErrUntrusted},
		{name: "no roots", chain: valid, roots: x509.NewCertPool(), wantErr: identity.ErrUntrusted},
		{name: "empty chain", chain: nil, wantErr: identity.ErrUntrusted},
		{name: "no trust domain configured", chain: valid, td: "-", wantErr: identity.ErrWrongTrustDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots := tt.roots
			if roots == nil {
				roots = ca.Pool()
			}
			td := tt.td
			switch td {
			case "":
				td = "cluster.local"
			case "-":
				td = ""
			}
			id, err := identity.VerifyChain(tt.chain, identity.VerifyOptions{Roots: roots, TrustDomain: td, Expected: tt.expected, Now: now})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("VerifyChain error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("VerifyChain: %v", err)
			}
			if id != app {
				t.Fatalf("VerifyChain = %v, want %v", id, app)
			}
		})
	}
}

func TestCertificate(t *testing.T) {
	ca := identitytest.NewCA("test")
	c := ca.MustIssue(testID)
	if c.ID != testID {
		t.Fatalf("ID = %v", c.ID)
	}
	if got := len(c.TLSCertificate().Certificate); got != 1 {
		t.Fatalf("TLS chain has %d certs, want the leaf only", got)
	}
	keyPEM, err := identity.EncodeKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	back, err := identity.ParseCertificate(keyPEM, c.ChainPEM())
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != c.ID || !back.Leaf.Equal(c.Leaf) || len(back.Roots) != 1 || !back.Roots[0].Equal(ca.Root) {
		t.Fatalf("round trip lost data: %+v", back)
	}
	if want := c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) / 2); !c.RefreshAt().Equal(want) {
		t.Fatalf("RefreshAt = %v, want %v", c.RefreshAt(), want)
	}
	other, _ := identity.GenerateKey()
	if _, err := identity.NewCertificate(other, []*x509.Certificate{c.Leaf}); err == nil {
		t.Fatal("NewCertificate accepted a key that does not match the leaf")
	}
}
