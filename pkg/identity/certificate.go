package identity

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Certificate is a workload's key and certificate chain. It is immutable
// once built; rotation replaces the whole value.
type Certificate struct {
	// ID is the identity in the leaf's URI SAN.
	ID ID
	// Leaf is the workload certificate.
	Leaf *x509.Certificate
	// Intermediates are the CA certificates between the leaf and the root,
	// leaf side first; often empty.
	Intermediates []*x509.Certificate
	// Roots are the trust anchors that came with the chain (its last
	// element); empty when the chain held only the leaf.
	Roots []*x509.Certificate
	// Key is the leaf's private key.
	Key crypto.Signer

	tls *tls.Certificate
}

// NewCertificate builds a Certificate from key and a chain ordered leaf
// first, root last, as the CA returns it. The leaf must carry exactly one
// valid SPIFFE ID and match key. A chain of two or more ends in its root.
func NewCertificate(key crypto.Signer, chain []*x509.Certificate) (*Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("empty certificate chain")
	}
	leaf := chain[0]
	id, err := IDFromCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("leaf certificate: %w", err)
	}
	if key == nil {
		return nil, errors.New("no private key")
	}
	if !publicKeysEqual(key.Public(), leaf.PublicKey) {
		return nil, fmt.Errorf("private key does not match the leaf certificate of %s", id)
	}
	c := &Certificate{ID: id, Leaf: leaf, Key: key}
	if len(chain) > 1 {
		c.Intermediates = chain[1 : len(chain)-1]
		c.Roots = chain[len(chain)-1:]
	}
	tc := &tls.Certificate{PrivateKey: key, Leaf: leaf}
	tc.Certificate = append(tc.Certificate, leaf.Raw)
	for _, ic := range c.Intermediates {
		tc.Certificate = append(tc.Certificate, ic.Raw)
	}
	c.tls = tc
	return c, nil
}

// ParseCertificate is NewCertificate on a PEM key and a PEM chain.
func ParseCertificate(keyPEM, chainPEM []byte) (*Certificate, error) {
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	chain, err := ParseCertificates(chainPEM)
	if err != nil {
		return nil, err
	}
	return NewCertificate(key, chain)
}

// TLSCertificate returns the certificate to present in a handshake: the leaf
// and intermediates (not the root) with the key. The result is shared;
// callers must not modify it.
func (c *Certificate) TLSCertificate() *tls.Certificate { return c.tls }

// RootPool returns a new pool holding c.Roots.
func (c *Certificate) RootPool() *x509.CertPool {
	pool := x509.NewCertPool()
	for _, r := range c.Roots {
		pool.AddCert(r)
	}
	return pool
}

// ExpiredAt reports whether the leaf is outside its validity period at now.
func (c *Certificate) ExpiredAt(now time.Time) bool {
	return now.Before(c.Leaf.NotBefore) || now.After(c.Leaf.NotAfter)
}

// RefreshAt returns the leaf's half-life: the time to start renewing it.
func (c *Certificate) RefreshAt() time.Time {
	return c.Leaf.NotBefore.Add(c.Leaf.NotAfter.Sub(c.Leaf.NotBefore) / 2)
}

// ChainPEM returns the leaf, intermediates and roots as concatenated PEM.
func (c *Certificate) ChainPEM() []byte {
	out := EncodeCertificate(c.Leaf)
	for _, ic := range c.Intermediates {
		out = append(out, EncodeCertificate(ic)...)
	}
	for _, r := range c.Roots {
		out = append(out, EncodeCertificate(r)...)
	}
	return out
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return reflect.DeepEqual(a, b)
}
