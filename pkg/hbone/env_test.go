package hbone

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

const (
	clientID = "spiffe://cluster.local/ns/client/sa/app"
	serverID = "spiffe://cluster.local/ns/server/sa/app"
)

// mesh is a test CA with helpers for server and client TLS configs.
type mesh struct {
	ca *identitytest.CA
}

func newMesh() *mesh { return &mesh{ca: identitytest.NewCA("hbone-test")} }

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
func (m *mesh) clientTLS(t testing.TB, src string) func(Key) (*tls.Config, error) {
	t.Helper()
	cert := m.ca.MustIssue(identity.MustParseID(src))
	return func(k Key) (*tls.Config, error) { return m.ca.ClientTLS(cert, k.Identities()...) }
}

// startServer serves srv on a loopback listener until the test ends and
// returns its address and a stop function that drains it and waits.
func startServer(t testing.TB, srv *Server) (netip.AddrPort, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after drain")
		}
	}
	t.Cleanup(stop)
	return ln.Addr().(*net.TCPAddr).AddrPort(), stop
}

func echoHandler() Handler {
	return HandlerFunc(func(_ context.Context, r *Request) {
		s, err := r.Accept()
		if err != nil {
			return
		}
		if _, err := io.Copy(s, s); err != nil {
			return
		}
		_ = s.CloseWrite()
	})
}

// testSetup is a server with handler h, and a pool dialling it as clientID.
type testSetup struct {
	mesh *mesh
	srv  *Server
	addr netip.AddrPort
	stop func()
	pool *Pool
	key  Key
}

func newSetup(t testing.TB, h Handler, modSrv func(*Server), modPool func(*PoolConfig)) *testSetup {
	t.Helper()
	m := newMesh()
	srv := &Server{Handler: h, TLSConfig: m.serverTLS(t, serverID), Logger: slog.New(slog.DiscardHandler), DrainTimeout: 5 * time.Second}
	if modSrv != nil {
		modSrv(srv)
	}
	addr, stop := startServer(t, srv)
	cfg := PoolConfig{TLSConfig: m.clientTLS(t, clientID)}
	if modPool != nil {
		modPool(&cfg)
	}
	pool, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	return &testSetup{mesh: m, srv: srv, addr: addr, stop: stop, pool: pool,
		key: NewKey(clientID, []string{serverID}, addr, netip.Addr{})}
}

func (ts *testSetup) dial(t testing.TB, hdr map[string][]string) *Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ts.pool.Dial(ctx, ts.key, "10.0.0.1:8080", hdr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return s
}

func isReset(err error, code ErrCode) bool {
	var se *StreamError
	return errors.As(err, &se) && se.Code == code
}

func mustID(s string) identity.ID { return identity.MustParseID(s) }
