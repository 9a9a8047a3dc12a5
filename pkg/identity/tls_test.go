package identity_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

// handshake runs a TLS handshake between the two configs over loopback TCP
// and returns both sides' errors and connection states.
func handshake(t *testing.T, client, server *tls.Config) (cerr, serr error, cs, ss tls.ConnectionState) { //nolint:staticcheck // ST1008: two errors, one per side, read best first.
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		defer func() { _ = c.Close() }()
		tc := tls.Server(c, server)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		serr = tc.Handshake()
		if serr == nil {
			// Wait for the client to finish verifying before closing.
			_, _ = tc.Read(make([]byte, 1))
		}
		ss = tc.ConnectionState()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(c, client)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	cerr = tc.Handshake()
	cs = tc.ConnectionState()
	if cerr == nil {
		_, _ = tc.Write([]byte{0})
	}
	_ = tc.Close()
	<-done
	return cerr, serr, cs, ss
}

func TestMeshTLS(t *testing.T) {
	ca := identitytest.NewCA("test")
	client := ca.MustIssue(identity.MustParseID("spiffe://cluster.local/ns/demo/sa/client"))
	server := ca.MustIssue(identity.MustParseID("spiffe://cluster.local/ns/demo/sa/server"))
	otherCA := identitytest.NewCA("other")
	rogue := otherCA.MustIssue(identity.MustParseID("spiffe://cluster.local/ns/demo/sa/client"))
	foreign := ca.MustIssue(identity.MustParseID("spiffe://other.domain/ns/demo/sa/client"))

	serverCfg := func(t *testing.T) *tls.Config {
		var sawLocal netip.AddrPort
		cfg, err := identity.ServerConfig(identity.ServerOptions{
			GetCertificate: identity.ByLocalAddr(func(_ context.Context, local netip.AddrPort) (*tls.Certificate, error) {
				sawLocal = local
				if !local.Addr().IsLoopback() {
					return nil, errors.New("unexpected local address")
				}
				return server.TLSCertificate(), nil
			}),
			TrustDomain: "cluster.local",
			Roots:       identity.StaticRoots(ca.Pool()),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server saw local address %v", sawLocal)
			}
		})
		return cfg
	}
	clientCfg := func(t *testing.T, cert *identity.Certificate, expected ...string) *tls.Config {
		var ids []identity.ID
		for _, e := range expected {
			ids = append(ids, identity.MustParseID(e))
		}
		cfg, err := identity.ClientConfig(identity.ClientOptions{
			GetClientCertificate: identity.StaticCertificate(cert),
			TrustDomain:          "cluster.local",
			Roots:                identity.StaticRoots(ca.Pool()),
			Expected:             ids,
		})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	t.Run("mutual success", func(t *testing.T) {
		cerr, serr, cs, ss := handshake(t, clientCfg(t, client, "spiffe://cluster.local/ns/demo/sa/server"), serverCfg(t))
		if cerr != nil || serr != nil {
			t.Fatalf("handshake: client %v, server %v", cerr, serr)
		}
		if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != "h2" {
			t.Fatalf("negotiated %s %q", tls.VersionName(cs.Version), cs.NegotiatedProtocol)
		}
		if ss.ServerName != "" {
			t.Fatalf("client sent SNI %q", ss.ServerName)
		}
		if id, err := identity.PeerID(cs); err != nil || id != server.ID {
			t.Fatalf("client PeerID = %v, %v; want %v", id, err, server.ID)
		}
		if id, err := identity.PeerID(ss); err != nil || id != client.ID {
			t.Fatalf("server PeerID = %v, %v; want %v", id, err, client.ID)
		}
	})
	t.Run("client refuses unexpected server identity", func(t *testing.T) {
		cerr, _, _, _ := handshake(t, clientCfg(t, client, "spiffe://cluster.local/ns/demo/sa/db"), serverCfg(t))
		if !errors.Is(cerr, identity.ErrUnexpectedIdentity) {
			t.Fatalf("client error = %v, want ErrUnexpectedIdentity", cerr)
		}
	})
	t.Run("server refuses client from another root", func(t *testing.T) {
		_, serr, _, _ := handshake(t, clientCfg(t, rogue, "spiffe://cluster.local/ns/demo/sa/server"), serverCfg(t))
		if !errors.Is(serr, identity.ErrUntrusted) {
			t.Fatalf("server error = %v, want ErrUntrusted", serr)
		}
	})
	t.Run("server refuses client from another trust domain", func(t *testing.T) {
		_, serr, _, _ := handshake(t, clientCfg(t, foreign, "spiffe://cluster.local/ns/demo/sa/server"), serverCfg(t))
		if !errors.Is(serr, identity.ErrWrongTrustDomain) {
			t.Fatalf("server error = %v, want ErrWrongTrustDomain", serr)
		}
	})
	t.Run("server refuses client without certificate", func(t *testing.T) {
		cfg := clientCfg(t, client, "spiffe://cluster.local/ns/demo/sa/server")
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil }
		_, serr, _, _ := handshake(t, cfg, serverCfg(t))
		if serr == nil {
			t.Fatal("server accepted a client without a certificate")
		}
	})
	t.Run("server refuses tls 1.2", func(t *testing.T) {
		cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*client.TLSCertificate()}}
		_, serr, _, _ := handshake(t, cfg, serverCfg(t))
		if serr == nil || !strings.Contains(serr.Error(), "version") {
			t.Fatalf("server error = %v, want a protocol version error", serr)
		}
	})
	t.Run("options validated", func(t *testing.T) {
		if _, err := identity.ClientConfig(identity.ClientOptions{GetClientCertificate: identity.StaticCertificate(client), TrustDomain: "cluster.local", Roots: identity.StaticRoots(ca.Pool())}); err == nil {
			t.Fatal("ClientConfig accepted no expected identities")
		}
		if _, err := identity.ServerConfig(identity.ServerOptions{TrustDomain: "cluster.local", Roots: identity.StaticRoots(ca.Pool())}); err == nil {
			t.Fatal("ServerConfig accepted no GetCertificate")
		}
	})
	t.Run("rotation without a new config", func(t *testing.T) {
		var current atomic.Pointer[identity.Certificate]
		current.Store(server)
		cfg, err := identity.ServerConfig(identity.ServerOptions{
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return current.Load().TLSCertificate(), nil },
			TrustDomain:    "cluster.local",
			Roots:          identity.StaticRoots(ca.Pool()),
		})
		if err != nil {
			t.Fatal(err)
		}
		ccfg := clientCfg(t, client, "spiffe://cluster.local/ns/demo/sa/server")
		_, _, before, _ := handshake(t, ccfg, cfg)
		current.Store(ca.MustIssue(server.ID))
		_, _, after, _ := handshake(t, ccfg, cfg)
		if len(before.PeerCertificates) == 0 || len(after.PeerCertificates) == 0 {
			t.Fatal("handshake failed")
		}
		if before.PeerCertificates[0].SerialNumber.Cmp(after.PeerCertificates[0].SerialNumber) == 0 {
			t.Fatal("the same certificate was served after rotation")
		}
	})
	t.Run("peer id before handshake", func(t *testing.T) {
		if _, err := identity.PeerID(tls.ConnectionState{}); err == nil {
			t.Fatal("PeerID accepted an incomplete handshake")
		}
	})
}
