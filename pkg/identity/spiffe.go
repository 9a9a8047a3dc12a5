package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DefaultTrustDomain is the trust domain used when none is configured.
const DefaultTrustDomain = "cluster.local"

// maxIDLength bounds a SPIFFE ID, as the SPIFFE specification does.
const maxIDLength = 2048

// ErrInvalidID is wrapped by every error ParseID returns.
var ErrInvalidID = errors.New("invalid SPIFFE ID")

// ID is a workload identity: a Kubernetes service account in a trust domain.
// The zero value is not a valid ID. IDs are comparable and usable as map keys.
type ID struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// NewID returns the ID of service account sa in namespace ns of trust domain
// td, validated like ParseID validates.
func NewID(td, ns, sa string) (ID, error) {
	id := ID{TrustDomain: td, Namespace: ns, ServiceAccount: sa}
	if err := id.Validate(); err != nil {
		return ID{}, err
	}
	return id, nil
}

// String formats the ID as spiffe://<td>/ns/<ns>/sa/<sa>.
func (id ID) String() string {
	return "spiffe://" + id.TrustDomain + "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount
}

// URL returns the ID as a URL, the form used in a certificate's URI SAN.
func (id ID) URL() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount}
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// Validate reports whether every part of id is well formed: the trust domain
// is lower-case letters, digits, '.', '-' and '_'; the namespace is a DNS-1123
// label; the service account is a DNS-1123 subdomain.
func (id ID) Validate() error {
	if err := validateTrustDomain(id.TrustDomain); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidID, err)
	}
	if err := validateLabel(id.Namespace); err != nil {
		return fmt.Errorf("%w: namespace %q: %w", ErrInvalidID, id.Namespace, err)
	}
	if err := validateSubdomain(id.ServiceAccount); err != nil {
		return fmt.Errorf("%w: service account %q: %w", ErrInvalidID, id.ServiceAccount, err)
	}
	if n := len(id.String()); n > maxIDLength {
		return fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalidID, n, maxIDLength)
	}
	return nil
}

// ParseID parses s strictly as spiffe://<td>/ns/<ns>/sa/<sa>. It rejects
// upper case, percent-encoding, ports, user info, queries, fragments, empty
// or dot segments, trailing slashes and any other path shape.
func ParseID(s string) (ID, error) {
	if len(s) > maxIDLength {
		return ID{}, fmt.Errorf("%w: %d bytes long, at most %d allowed", ErrInvalidID, len(s), maxIDLength)
	}
	rest, ok := strings.CutPrefix(s, "spiffe://")
	if !ok {
		return ID{}, fmt.Errorf("%w: %q does not start with spiffe://", ErrInvalidID, s)
	}
	td, path, ok := strings.Cut(rest, "/")
	if !ok {
		return ID{}, fmt.Errorf("%w: %q has no path", ErrInvalidID, s)
	}
	if err := validateTrustDomain(td); err != nil {
		return ID{}, fmt.Errorf("%w: %w", ErrInvalidID, err)
	}
	parts := strings.Split(path, "/")
	if len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" {
		return ID{}, fmt.Errorf("%w: path of %q is not /ns/<namespace>/sa/<service-account>", ErrInvalidID, s)
	}
	id := ID{TrustDomain: td, Namespace: parts[1], ServiceAccount: parts[3]}
	if err := id.Validate(); err != nil {
		return ID{}, err
	}
	return id, nil
}

// MustParseID is ParseID for constants in tests and examples; it panics on
// an invalid ID.
func MustParseID(s string) ID {
	id, err := ParseID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// IDFromCertificate returns the SPIFFE ID of a leaf certificate. The
// certificate must carry exactly one URI SAN and it must be a valid ID.
func IDFromCertificate(cert *x509.Certificate) (ID, error) {
	if len(cert.URIs) != 1 {
		return ID{}, fmt.Errorf("certificate has %d URI SANs, want exactly 1", len(cert.URIs))
	}
	return ParseID(cert.URIs[0].String())
}

func validateTrustDomain(td string) error {
	if td == "" {
		return errors.New("empty trust domain")
	}
	if len(td) > 255 {
		return fmt.Errorf("trust domain is %d bytes long, at most 255 allowed", len(td))
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if !isLowerAlnum(c) && c != '.' && c != '-' && c != '_' {
			return fmt.Errorf("trust domain %q: character %q not allowed (lower-case letters, digits, '.', '-', '_')", td, c)
		}
	}
	return nil
}

// validateLabel checks a DNS-1123 label, the rule for namespace names.
func validateLabel(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 63 {
		return fmt.Errorf("%d characters long, at most 63 allowed", len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLowerAlnum(c) && c != '-' {
			return fmt.Errorf("character %q not allowed (lower-case letters, digits, '-')", c)
		}
	}
	if s[0] == '-' || s[len(s)-1] == '-' {
		return errors.New("must start and end with a letter or digit")
	}
	return nil
}

// validateSubdomain checks a DNS-1123 subdomain, the rule for service
// account names.
func validateSubdomain(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 253 {
		return fmt.Errorf("%d characters long, at most 253 allowed", len(s))
	}
	for label := range strings.SplitSeq(s, ".") {
		if err := validateLabel(label); err != nil {
			return fmt.Errorf("label %q: %w", label, err)
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
