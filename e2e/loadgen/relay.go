package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"
)

// RouteMode says which side of a relay route speaks TLS.
type RouteMode string

const (
	// TLSOut accepts plain TCP and forwards over TLS (the client-side relay).
	TLSOut RouteMode = "tls-out"
	// TLSIn accepts TLS and forwards plain TCP (the server-side relay).
	TLSIn RouteMode = "tls-in"
)

// Route is one relay listener and where it forwards.
type Route struct {
	Mode   RouteMode
	Listen string
	Target string
}

// ParseRoute parses "LISTEN=TARGET" for mode.
func ParseRoute(mode RouteMode, s string) (Route, error) {
	l, t, ok := strings.Cut(s, "=")
	if !ok || l == "" || t == "" {
		return Route{}, fmt.Errorf("relay route %q: want LISTEN=TARGET", s)
	}
	return Route{Mode: mode, Listen: l, Target: t}, nil
}

// Relay runs routes until ctx ends: the minimal pair of TLS relays that
// does what the ztunnels do to bytes (mutual TLS 1.3 with ECDSA P-256 and
// AES-GCM, one TLS connection per client connection, copying) and nothing
// else: no identity checks, no pooling, no policy. Its certificate is
// generated at start and not verified by the peer.
func Relay(ctx context.Context, routes []Route, log *slog.Logger) error {
	if len(routes) == 0 {
		return errors.New("relay: no routes")
	}
	cert, err := selfSigned()
	if err != nil {
		return err
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13}
	clientTLS := &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13} //nolint:gosec // the benchmark's floor: encryption cost without verification
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(routes))
	for _, r := range routes {
		l, err := net.Listen("tcp", r.Listen)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("relay listen %s: %w", r.Listen, err)
		}
		log.Info("relaying", "mode", r.Mode, "listen", l.Addr().String(), "target", r.Target)
		if r.Mode == TLSIn {
			l = tls.NewListener(l, serverTLS)
		}
		wg.Add(1)
		go func() { // owned by Relay: ends with ctx
			defer wg.Done()
			err := acceptLoop(ctx, l, func(in net.Conn) {
				var d net.Dialer
				out, err := d.DialContext(ctx, "tcp", r.Target)
				if err != nil {
					log.Warn("relay dial", "target", r.Target, "err", err)
					return
				}
				if r.Mode == TLSOut {
					tc := tls.Client(out, clientTLS)
					if err := tc.HandshakeContext(ctx); err != nil {
						_ = out.Close()
						log.Warn("relay handshake", "target", r.Target, "err", err)
						return
					}
					out = tc
				}
				pipe(in, out)
			})
			if err != nil {
				errc <- err
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	wg.Wait()
	return err
}

// pipe copies both ways until both directions end, passing half-closes on.
func pipe(a, b net.Conn) {
	defer func() { _ = b.Close() }()
	done := make(chan struct{})
	go func() { // owned by pipe: waited for below
		defer close(done)
		_, _ = io.Copy(b, a)
		closeWrite(b)
	}()
	_, _ = io.Copy(a, b)
	closeWrite(a)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "weft-bench-relay"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("relay certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
