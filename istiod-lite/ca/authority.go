package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
)

// clockSkew is how far before "now" issued certificates start, so that a
// peer whose clock is slightly behind accepts them at once.
const clockSkew = time.Minute

// authority signs certificates with one CA key. It is immutable and safe
// for concurrent use.
type authority struct {
	cert   *x509.Certificate   // the signing CA certificate
	key    crypto.Signer       // its key
	chain  []*x509.Certificate // certificates to append after a leaf: intermediates, then the root
	root   *x509.Certificate
	rootPE []byte // root as PEM
	source string // where it came from, for logs
}

func newAuthority(cert *x509.Certificate, key crypto.Signer, chain []*x509.Certificate, root *x509.Certificate, source string) (*authority, error) {
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, errors.New("signing certificate is not a CA certificate")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("signing certificate lacks the certSign key usage")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("signing key does not match the signing certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range chain {
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: cert.NotBefore.Add(time.Second)}); err != nil {
		return nil, fmt.Errorf("signing certificate does not chain to the root: %w", err)
	}
	return &authority{cert: cert, key: key, chain: chain, root: root, rootPE: identity.EncodeCertificate(root), source: source}, nil
}

// newSelfSignedRoot makes a new root CA key and certificate.
func newSelfSignedRoot(trustDomain string, now time.Time, validity time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, err := identity.GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{trustDomain}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create self-signed root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// leafRequest is what to put into a leaf certificate.
type leafRequest struct {
	pub      crypto.PublicKey
	uri      *url.URL // a SPIFFE ID, or nil
	dnsNames []string
	validity time.Duration
}

// sign issues a leaf and returns the full chain, leaf first and root last.
// The leaf never outlives the signing certificate.
func (a *authority) sign(req leafRequest, now time.Time) ([]*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(req.validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              req.dnsNames,
	}
	if req.uri != nil {
		tmpl.URIs = []*url.URL{req.uri}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, req.pub, a.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse issued certificate: %w", err)
	}
	out := make([]*x509.Certificate, 0, 2+len(a.chain))
	out = append(out, leaf)
	out = append(out, a.chain...)
	return out, nil
}

func randomSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("random serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}
