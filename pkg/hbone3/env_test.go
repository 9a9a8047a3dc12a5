package hbone3

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

const (
	clientID = "spiffe://cluster.local/ns/client/sa/app"
	serverID = "spiffe://cluster.local/ns/server/sa/app"
	otherID  = "spiffe://cluster.local/ns/other/sa/app"
)

// mesh is a test CA with helpers for server and client TLS configs.
type mesh struct{ ca *identitytest.CA }

func newMesh() *mesh { return &mesh{ca: identitytest.NewCA("hbone3-test")} }

func (m *mesh) serverTLS(t testing.TB, id string) *tls.Config {
	t.Helper()
	cfg, err := m.ca.ServerTLS(id)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// clientTLS returns a PoolConfig.TLSConfig presenting src and expecting the
// key's identities.
func (m *mesh) clientTLS(t testing.TB, src string) func(hbone.Key) (*tls.Config, error) {
	t.Helper()
	cert := m.ca.MustIssue(identity.MustParseID(src))
	return func(k hbone.Key) (*tls.Config, error) { return m.ca.ClientTLS(cert, k.Identities()...) }
}

// listenUDP returns a loopback UDP socket closed when the test ends.
func listenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// startServer serves srv on a loopback UDP socket until the test ends.
func startServer(t testing.TB, srv *Server) netip.AddrPort {
	t.Helper()
	pc := listenUDP(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// echoStreams accepts every stream, checks nothing, and echoes its bytes
// until the client's FIN, then sends FIN.
func echoStreams(_ context.Context, req *Request) {
	s, err := req.Accept()
	if err != nil {
		return
	}
	defer s.Close()
	_, _ = io.Copy(s, s)
	_ = s.CloseWrite()
}

func newPool(t testing.TB, cfg PoolConfig) *Pool {
	t.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
