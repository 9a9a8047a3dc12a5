package identitytest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
)

// CA is a self-signed test certificate authority. It is safe for
// concurrent use.
type CA struct {
	Root *x509.Certificate
	key  *ecdsa.PrivateKey

	mu     sync.Mutex
	serial int64
}

// NewCA returns a CA whose root is valid from an hour ago for ten years.
// It panics on failure, which only a broken crypto/rand can cause.
func NewCA(name string) *CA {
	key, err := identity.GenerateKey()
	if err != nil {
		panic(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{name}, CommonName: name + " root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return &CA{Root: root, key: key, serial: 1}
}

// Pool returns a new pool holding the root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root)
	return p
}

// RootPEM returns the root certificate as PEM.
func (ca *CA) RootPEM() []byte { return identity.EncodeCertificate(ca.Root) }

// Issue returns a new key and certificate for id valid from notBefore to
// notAfter; the chain is the leaf and the root.
func (ca *CA) Issue(id identity.ID, notBefore, notAfter time.Time) (*identity.Certificate, error) {
	key, err := identity.GenerateKey()
	if err != nil {
		return nil, err
	}
	leaf, err := ca.sign(id.URL(), key.Public(), notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	return identity.NewCertificate(key, []*x509.Certificate{leaf, ca.Root})
}

// MustIssue is Issue for a certificate valid from an hour ago for a day; it
// panics on error.
func (ca *CA) MustIssue(id identity.ID) *identity.Certificate {
	now := time.Now()
	c, err := ca.Issue(id, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		panic(err)
	}
	return c
}

// SignCSR checks a PEM CSR with identity.ParseCSR and returns the chain as
// PEM strings, leaf first and root last, as the CA RPC does.
func (ca *CA) SignCSR(csrPEM []byte, notBefore, notAfter time.Time) ([]string, error) {
	csr, id, err := identity.ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	leaf, err := ca.sign(id.URL(), csr.PublicKey, notBefore, notAfter)
	if err != nil {
		return nil, err
	}
	return []string{string(identity.EncodeCertificate(leaf)), string(ca.RootPEM())}, nil
}

func (ca *CA) sign(uri *url.URL, pub any, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	ca.mu.Lock()
	ca.serial++
	serial := ca.serial
	ca.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		URIs:                  []*url.URL{uri},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Root, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// PEMBlock is a convenience for tests that build malformed inputs.
func PEMBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
