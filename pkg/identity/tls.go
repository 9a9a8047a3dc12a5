package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// ALPN is the only application protocol mesh TLS negotiates.
const ALPN = "h2"

// RootsFunc returns the current trust anchors. It is called on every
// handshake, so a root rotation takes effect without rebuilding configs or
// restarting listeners. It must be safe for concurrent use.
type RootsFunc func() *x509.CertPool

// StaticRoots returns a RootsFunc that always returns pool.
func StaticRoots(pool *x509.CertPool) RootsFunc { return func() *x509.CertPool { return pool } }

// ServerOptions configures ServerConfig.
type ServerOptions struct {
	// GetCertificate picks the certificate to present, usually the one of
	// the destination workload that owns hello.Conn.LocalAddr() (see
	// ByLocalAddr). It is called on every handshake. Required.
	GetCertificate func(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
	// TrustDomain is the trust domain client identities must be in. Required.
	TrustDomain string
	// Roots returns the trust anchors for client chains. Required.
	Roots RootsFunc
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
}

// ClientOptions configures ClientConfig.
type ClientOptions struct {
	// GetClientCertificate returns the source workload's certificate; it is
	// called on every handshake. Required.
	GetClientCertificate func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	// TrustDomain is the trust domain the server's identity must be in. Required.
	TrustDomain string
	// Roots returns the trust anchors for server chains. Required.
	Roots RootsFunc
	// Expected lists the identities the server may present. Required: a
	// mesh client always knows whom it dials.
	Expected []ID
	// Now is the clock for certificate validity; nil means time.Now.
	Now func() time.Time
}

// ServerConfig returns a TLS config for a mesh server (an HBONE listener):
// TLS 1.3 only, ALPN h2, a client certificate required and verified against
// opts.Roots and opts.TrustDomain, AES-GCM enforced, no session tickets.
// The certificate is chosen per handshake by opts.GetCertificate, so it can
// differ per destination workload and rotate without a restart.
func ServerConfig(opts ServerOptions) (*tls.Config, error) {
	if opts.GetCertificate == nil {
		return nil, errors.New("server tls config: GetCertificate is required")
	}
	if opts.TrustDomain == "" || opts.Roots == nil {
		return nil, errors.New("server tls config: TrustDomain and Roots are required")
	}
	now := clockOrDefault(opts.Now)
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		NextProtos:             []string{ALPN},
		ClientAuth:             tls.RequireAnyClientCert,
		GetCertificate:         opts.GetCertificate,
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := checkSession(cs); err != nil {
				return err
			}
			_, err := VerifyChain(cs.PeerCertificates, VerifyOptions{
				Roots: opts.Roots(), TrustDomain: opts.TrustDomain, Now: now(),
			})
			if err != nil {
				return fmt.Errorf("verify client certificate: %w", err)
			}
			return nil
		},
	}, nil
}

// ClientConfig returns a TLS config for a mesh client: TLS 1.3 only, ALPN
// h2, no SNI, AES-GCM enforced, and the server's chain verified against
// opts.Roots with its SPIFFE identity required to be one of opts.Expected.
// Go's host-name verification is replaced by that check (SPIFFE
// certificates carry no DNS names), which is why InsecureSkipVerify is set;
// VerifyConnection always runs and fails the handshake on any mismatch.
func ClientConfig(opts ClientOptions) (*tls.Config, error) {
	if opts.GetClientCertificate == nil {
		return nil, errors.New("client tls config: GetClientCertificate is required")
	}
	if opts.TrustDomain == "" || opts.Roots == nil {
		return nil, errors.New("client tls config: TrustDomain and Roots are required")
	}
	if len(opts.Expected) == 0 {
		return nil, errors.New("client tls config: at least one expected server identity is required")
	}
	expected := append([]ID(nil), opts.Expected...)
	now := clockOrDefault(opts.Now)
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		MaxVersion:           tls.VersionTLS13,
		NextProtos:           []string{ALPN},
		ServerName:           "", // no SNI, as Istio's ztunnel
		InsecureSkipVerify:   true,
		GetClientCertificate: opts.GetClientCertificate,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := checkSession(cs); err != nil {
				return err
			}
			_, err := VerifyChain(cs.PeerCertificates, VerifyOptions{
				Roots: opts.Roots(), TrustDomain: opts.TrustDomain, Expected: expected, Now: now(),
			})
			if err != nil {
				return fmt.Errorf("verify server certificate: %w", err)
			}
			return nil
		},
	}, nil
}

// PeerID returns the SPIFFE identity of the peer of a completed handshake
// made with ServerConfig or ClientConfig, which has already verified it.
func PeerID(cs tls.ConnectionState) (ID, error) {
	if !cs.HandshakeComplete {
		return ID{}, errors.New("peer identity: handshake not complete")
	}
	if len(cs.PeerCertificates) == 0 {
		return ID{}, errors.New("peer identity: peer presented no certificate")
	}
	return IDFromCertificate(cs.PeerCertificates[0])
}

// ByLocalAddr adapts a lookup by the connection's local address (the
// destination workload's IP and port on an inbound listener) into a
// ServerOptions.GetCertificate.
func ByLocalAddr(lookup func(ctx context.Context, local netip.AddrPort) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if hello.Conn == nil {
			return nil, errors.New("select certificate: no connection in client hello")
		}
		local, err := addrPort(hello.Conn.LocalAddr())
		if err != nil {
			return nil, fmt.Errorf("select certificate: %w", err)
		}
		return lookup(hello.Context(), local)
	}
}

// StaticCertificate adapts a fixed certificate into GetClientCertificate.
func StaticCertificate(c *Certificate) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.TLSCertificate(), nil }
}

func addrPort(a net.Addr) (netip.AddrPort, error) {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort(), nil
	case *net.UDPAddr:
		return v.AddrPort(), nil
	case nil:
		return netip.AddrPort{}, errors.New("no local address")
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("local address %q: %w", a, err)
		}
		return ap, nil
	}
}

// checkSession enforces what tls.Config cannot express for TLS 1.3: Go does
// not let the TLS 1.3 suites be configured, so a suite other than AES-GCM
// (ChaCha20-Poly1305) fails the handshake here.
func checkSession(cs tls.ConnectionState) error {
	if cs.Version != tls.VersionTLS13 {
		return fmt.Errorf("mesh tls: negotiated %s, want TLS 1.3", tls.VersionName(cs.Version))
	}
	switch cs.CipherSuite {
	case tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384:
		return nil
	default:
		return fmt.Errorf("mesh tls: negotiated %s, want an AES-GCM suite", tls.CipherSuiteName(cs.CipherSuite))
	}
}

func clockOrDefault(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}
