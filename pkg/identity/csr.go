package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// MaxCSRSize bounds the PEM text ParseCSR accepts.
const MaxCSRSize = 64 << 10

// CSRReason classifies why a CSR was refused; it is stable and short enough
// to be a metric label.
type CSRReason string

// The reasons ParseCSR reports.
const (
	CSRMalformed    CSRReason = "csr_malformed"     // not one parseable PEM CSR
	CSRBadSignature CSRReason = "csr_bad_signature" // self-signature does not verify
	CSRWeakKey      CSRReason = "csr_weak_key"      // key type or size not allowed
	CSRBadSAN       CSRReason = "csr_bad_san"       // not exactly one URI SAN and nothing else
	CSRInvalidID    CSRReason = "csr_invalid_id"    // the URI SAN is not a valid SPIFFE ID
)

// CSRError is the error ParseCSR returns; Reason says which check failed and
// the message names the problem for the requester.
type CSRError struct {
	Reason CSRReason
	Err    error
}

func (e *CSRError) Error() string { return "invalid csr: " + e.Err.Error() }
func (e *CSRError) Unwrap() error { return e.Err }

func csrErr(reason CSRReason, format string, args ...any) error {
	return &CSRError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ParseCSR parses and checks a PEM certificate signing request: exactly one
// "CERTIFICATE REQUEST" block and nothing else but white space, a valid
// self-signature, an ECDSA P-256/P-384 or RSA (at least 2048 bits) key, and
// exactly one SAN which is a URI holding a valid SPIFFE ID (no DNS, IP or
// e-mail SANs). It returns the request and that ID. Every error is a
// *CSRError. ParseCSR does not decide whether the requester may have the ID.
func ParseCSR(data []byte) (*x509.CertificateRequest, ID, error) {
	if len(data) > MaxCSRSize {
		return nil, ID{}, csrErr(CSRMalformed, "%d bytes long, at most %d allowed", len(data), MaxCSRSize)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, ID{}, csrErr(CSRMalformed, "no PEM block found")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, ID{}, csrErr(CSRMalformed, "PEM block is %q, want \"CERTIFICATE REQUEST\"", block.Type)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, ID{}, csrErr(CSRMalformed, "unexpected data after the PEM block")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, ID{}, csrErr(CSRMalformed, "parse: %w", err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, ID{}, &CSRError{Reason: CSRWeakKey, Err: err}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, ID{}, csrErr(CSRBadSignature, "signature: %w", err)
	}
	if n := len(csr.DNSNames) + len(csr.IPAddresses) + len(csr.EmailAddresses); n != 0 {
		return nil, ID{}, csrErr(CSRBadSAN, "has %d DNS/IP/e-mail SANs, want only one URI SAN", n)
	}
	if len(csr.URIs) != 1 {
		return nil, ID{}, csrErr(CSRBadSAN, "has %d URI SANs, want exactly 1", len(csr.URIs))
	}
	id, err := ParseID(csr.URIs[0].String())
	if err != nil {
		return nil, ID{}, &CSRError{Reason: CSRInvalidID, Err: err}
	}
	return csr, id, nil
}

func checkPublicKey(pub any) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return fmt.Errorf("ecdsa curve %s not allowed, use P-256 or P-384", k.Curve.Params().Name)
		}
		return nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("rsa key of %d bits too weak, at least 2048 required", k.N.BitLen())
		}
		return nil
	case nil:
		return errors.New("no public key")
	default:
		return fmt.Errorf("key type %T not allowed, use ECDSA P-256", pub)
	}
}
