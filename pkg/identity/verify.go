package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors VerifyChain wraps so that callers can branch on the failure.
var (
	ErrUntrusted          = errors.New("certificate chain not trusted")
	ErrExpired            = errors.New("certificate expired")
	ErrNotYetValid        = errors.New("certificate not yet valid")
	ErrWrongTrustDomain   = errors.New("wrong trust domain")
	ErrUnexpectedIdentity = errors.New("unexpected peer identity")
)

// VerifyOptions says what VerifyChain accepts.
type VerifyOptions struct {
	// Roots are the trust anchors. Required.
	Roots *x509.CertPool
	// TrustDomain is the trust domain the leaf's ID must be in. Required.
	TrustDomain string
	// Expected, when non-empty, lists the only identities accepted.
	Expected []ID
	// Now is the time to check validity at; zero means time.Now().
	Now time.Time
}

// VerifyChain verifies a peer's chain (leaf first, as presented in a
// handshake) and returns the leaf's identity. It checks, in order: every
// certificate's validity period at opts.Now (ErrExpired, ErrNotYetValid),
// the chain up to opts.Roots (ErrUntrusted), the leaf's single SPIFFE URI
// SAN and its trust domain (ErrWrongTrustDomain), and opts.Expected
// (ErrUnexpectedIdentity). Errors wrap those sentinels with details.
func VerifyChain(chain []*x509.Certificate, opts VerifyOptions) (ID, error) {
	if len(chain) == 0 {
		return ID{}, fmt.Errorf("%w: no certificate presented", ErrUntrusted)
	}
	if opts.Roots == nil {
		return ID{}, fmt.Errorf("%w: no trust anchors configured", ErrUntrusted)
	}
	if opts.TrustDomain == "" {
		return ID{}, fmt.Errorf("%w: no trust domain configured", ErrWrongTrustDomain)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	for i, c := range chain {
		if now.Before(c.NotBefore) {
			return ID{}, fmt.Errorf("%w: certificate %d (serial %s) valid from %s, now %s",
				ErrNotYetValid, i, c.SerialNumber, c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
		if now.After(c.NotAfter) {
			return ID{}, fmt.Errorf("%w: certificate %d (serial %s) expired at %s, now %s",
				ErrExpired, i, c.SerialNumber, c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         opts.Roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	id, err := IDFromCertificate(leaf)
	if err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	if id.TrustDomain != opts.TrustDomain {
		return ID{}, fmt.Errorf("%w: %s is in %q, want %q", ErrWrongTrustDomain, id, id.TrustDomain, opts.TrustDomain)
	}
	if len(opts.Expected) > 0 && !slices.Contains(opts.Expected, id) {
		return ID{}, fmt.Errorf("%w: got %s, want one of %v", ErrUnexpectedIdentity, id, opts.Expected)
	}
	return id, nil
}
