package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/pkg/identity"
)

// pluginPEMs are the certificates and keys an operator may put into the
// cacerts Secret, good and bad.
type pluginPEMs struct {
	certs [][]byte // root, intermediate, other root, leaf (not a CA), root+intermediate bundle
	keys  [][]byte // root key, intermediate key, other key
}

func newPluginPEMs(tb testing.TB) *pluginPEMs {
	tb.Helper()
	now := time.Now()
	mk := func(cn string, isCA bool, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			BasicConstraintsValid: true, IsCA: isCA,
		}
		if isCA {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
		if err != nil {
			tb.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		return c, key
	}
	root, rootKey := mk("root", true, nil, nil)
	inter, interKey := mk("intermediate", true, root, rootKey)
	other, otherKey := mk("other root", true, nil, nil)
	leaf, _ := mk("leaf", false, inter, interKey)
	keyPEM := func(k crypto.Signer) []byte {
		b, err := identity.EncodeKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	enc := identity.EncodeCertificate
	return &pluginPEMs{
		certs: [][]byte{enc(root), enc(inter), enc(other), enc(leaf), append(enc(inter), enc(root)...)},
		keys:  [][]byte{keyPEM(rootKey), keyPEM(interKey), keyPEM(otherKey)},
	}
}

// pick returns the choice's PEM from list, or raw for a choice past it.
func pick(list [][]byte, choice uint8, raw []byte) []byte {
	if int(choice) < len(list) {
		return list[choice]
	}
	if int(choice) == len(list) {
		return nil
	}
	return raw
}

// FuzzPluginAuthority loads arbitrary plug-in CA Secrets (cacerts): each
// of ca-cert.pem, ca-key.pem, root-cert.pem and cert-chain.pem is one of
// a root, an intermediate, an unrelated root, a leaf, a bundle, absent, or
// fuzzed bytes. The CA either refuses the Secret with an error or signs
// with ca-cert.pem's certificate, which is a CA whose key is ca-key.pem,
// and every leaf it issues verifies up to a root from root-cert.pem
// through the chain it serves.
func FuzzPluginAuthority(f *testing.F) {
	p := newPluginPEMs(f)
	f.Add(uint8(1), uint8(1), uint8(0), uint8(5), []byte{}) // intermediate, its key, root, no chain
	f.Add(uint8(1), uint8(1), uint8(0), uint8(4), []byte{}) // with a bundle as chain
	f.Add(uint8(0), uint8(0), uint8(0), uint8(5), []byte{}) // the root signs itself
	f.Add(uint8(1), uint8(0), uint8(0), uint8(5), []byte{}) // key of another certificate
	f.Add(uint8(1), uint8(1), uint8(2), uint8(5), []byte{}) // root that did not sign it
	f.Add(uint8(3), uint8(1), uint8(0), uint8(5), []byte{}) // a leaf as CA
	f.Add(uint8(1), uint8(1), uint8(0), uint8(2), []byte{}) // a chain through another root
	f.Add(uint8(6), uint8(1), uint8(0), uint8(5), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add(uint8(1), uint8(4), uint8(0), uint8(5), []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, certC, keyC, rootC, chainC uint8, raw []byte) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: PluginSecretName}, Data: map[string][]byte{
			keyCACert:    pick(p.certs, certC, raw),
			keyCAKey:     pick(p.keys, keyC, raw),
			keyRootCert:  pick(p.certs, rootC, raw),
			keyCertChain: pick(p.certs, chainC, raw),
		}}
		a, err := pluginAuthority(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		certs, err := identity.ParseCertificates(s.Data[keyCACert])
		if err != nil || !a.cert.Equal(certs[0]) {
			t.Fatalf("signing with %v, not ca-cert.pem's first certificate (%v)", a.cert.Subject, err)
		}
		if !a.cert.IsCA {
			t.Fatal("signing certificate is not a CA")
		}
		key, err := identity.ParseKey(s.Data[keyCAKey])
		if err != nil {
			t.Fatalf("accepted ca-key.pem that does not parse: %v", err)
		}
		if !publicKeyEqual(a.cert.PublicKey, key.Public()) {
			t.Fatal("ca-key.pem is not the signing certificate's key")
		}
		roots, err := identity.ParseCertificates(s.Data[keyRootCert])
		if err != nil || !a.root.Equal(roots[0]) {
			t.Fatalf("root %v is not root-cert.pem's first certificate (%v)", a.root.Subject, err)
		}
		chain, err := a.sign(leafRequest{pub: key.Public(), uri: identity.MustParseID("spiffe://cluster.local/ns/demo/sa/app").URL(), validity: time.Hour}, time.Now())
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(a.root)
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Fatalf("issued leaf does not verify to the root: %v", err)
		}
		if !chain[len(chain)-1].Equal(a.root) {
			t.Fatal("served chain does not end with the root")
		}
	})
}
