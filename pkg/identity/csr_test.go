package identity_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

var testID = identity.MustParseID("spiffe://cluster.local/ns/demo/sa/app")

func csrPEM(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return identitytest.PEMBlock("CERTIFICATE REQUEST", der)
}

func TestParseCSR(t *testing.T) {
	p256, _ := identity.GenerateKey()
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	good, err := identity.NewCSR(p256, testID)
	if err != nil {
		t.Fatal(err)
	}
	uri := testID.URL()
	other, _ := url.Parse("spiffe://cluster.local/ns/demo/sa/other")
	// Flip a bit near the end of the DER, inside the signature.
	raw := append([]byte(nil), mustDecode(t, good)...)
	raw[len(raw)-3] ^= 0x01
	badSig := identitytest.PEMBlock("CERTIFICATE REQUEST", raw)

	tests := []struct {
		name       string
		in         []byte
		wantReason identity.CSRReason
		wantMsg    string
	}{
		{name: "good", in: good},
		{name: "good with trailing newline", in: append(append([]byte(nil), good...), '\n', '\n')},
		{name: "empty", in: nil, wantReason: identity.CSRMalformed, wantMsg: "no PEM block"},
		{name: "not pem", in: []byte("hello"), wantReason: identity.CSRMalformed, wantMsg: "no PEM block"},
		{name: "wrong block type", in: identitytest.PEMBlock("CERTIFICATE", []byte{1}), wantReason: identity.CSRMalformed, wantMsg: `"CERTIFICATE"`},
		{name: "garbage der", in: identitytest.PEMBlock("CERTIFICATE REQUEST", []byte{1, 2, 3}), wantReason: identity.CSRMalformed, wantMsg: "parse"},
		{name: "two csrs", in: append(append([]byte(nil), good...), good...), wantReason: identity.CSRMalformed, wantMsg: "after the PEM block"},
		{name: "too big", in: make([]byte, identity.MaxCSRSize+1), wantReason: identity.CSRMalformed, wantMsg: "at most"},
		{name: "bad signature", in: badSig, wantReason: identity.CSRBadSignature, wantMsg: "signature"},
		{name: "p224 key", in: csrPEM(t, p224, &x509.CertificateRequest{URIs: []*url.URL{uri}}), wantReason: identity.CSRWeakKey, wantMsg: "P-224"},
		{name: "rsa 1024", in: csrPEM(t, rsa1024, &x509.CertificateRequest{URIs: []*url.URL{uri}}), wantReason: identity.CSRWeakKey, wantMsg: "1024 bits"},
		{name: "ed25519", in: csrPEM(t, ed, &x509.CertificateRequest{URIs: []*url.URL{uri}}), wantReason: identity.CSRWeakKey, wantMsg: "not allowed"},
		{name: "no san", in: csrPEM(t, p256, &x509.CertificateRequest{}), wantReason: identity.CSRBadSAN, wantMsg: "0 URI SANs"},
		{name: "two uri sans", in: csrPEM(t, p256, &x509.CertificateRequest{URIs: []*url.URL{uri, other}}), wantReason: identity.CSRBadSAN, wantMsg: "2 URI SANs"},
		{name: "extra dns san", in: csrPEM(t, p256, &x509.CertificateRequest{URIs: []*url.URL{uri}, DNSNames: []string{"evil.example"}}), wantReason: identity.CSRBadSAN, wantMsg: "DNS/IP/e-mail"},
		{name: "extra ip san", in: csrPEM(t, p256, &x509.CertificateRequest{URIs: []*url.URL{uri}, IPAddresses: []net.IP{net.IPv4(10, 0, 0, 1)}}), wantReason: identity.CSRBadSAN, wantMsg: "DNS/IP/e-mail"},
		{name: "non spiffe uri", in: csrPEM(t, p256, &x509.CertificateRequest{URIs: []*url.URL{{Scheme: "https", Host: "x"}}}), wantReason: identity.CSRInvalidID, wantMsg: "spiffe://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, id, err := identity.ParseCSR(tt.in)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("ParseCSR: %v", err)
				}
				if id != testID || csr == nil {
					t.Fatalf("ParseCSR = %v, %v; want %v", csr, id, testID)
				}
				return
			}
			var ce *identity.CSRError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseCSR error = %v, want a *CSRError", err)
			}
			if ce.Reason != tt.wantReason || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("ParseCSR error = %q (%s), want reason %s containing %q", err, ce.Reason, tt.wantReason, tt.wantMsg)
			}
		})
	}
}

func FuzzParseCSR(f *testing.F) {
	key, err := identity.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	good, err := identity.NewCSR(key, testID)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(mustDecode(f, good))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, id, err := identity.ParseCSR(data)
		if err != nil {
			var ce *identity.CSRError
			if !errors.As(err, &ce) || ce.Reason == "" {
				t.Fatalf("error %v is not a *CSRError with a reason", err)
			}
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("accepted CSR with invalid ID: %v", err)
		}
		if len(csr.URIs) != 1 || len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.EmailAddresses) != 0 {
			t.Fatalf("accepted CSR with SANs %v %v %v %v", csr.URIs, csr.DNSNames, csr.IPAddresses, csr.EmailAddresses)
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("accepted CSR with bad signature: %v", err)
		}
	})
}
