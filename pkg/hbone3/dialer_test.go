package hbone3

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/hbone"
)

// h2Echo serves HBONE over TCP on loopback until the test ends and
// returns its address.
func h2Echo(t *testing.T, m *mesh) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &hbone.Server{
		TLSConfig: m.serverTLS(t, serverID),
		Handler: hbone.HandlerFunc(func(_ context.Context, req *hbone.Request) {
			s, err := req.Accept()
			if err != nil {
				return
			}
			defer s.Close()
			_, _ = io.Copy(s, s)
			_ = s.CloseWrite()
		}),
		DrainTimeout: time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func roundTrip(t *testing.T, s Tunnel, msg string) {
	t.Helper()
	defer s.Close()
	_, _ = s.Write([]byte(msg))
	_ = s.CloseWrite()
	back, err := io.ReadAll(s)
	if err != nil || string(back) != msg {
		t.Fatalf("echo %q, %v", back, err)
	}
}

// TestDialerFallsBackWhenUDPIsDropped: the destination advertises QUIC but
// its UDP port drops every packet (a socket nobody reads); the dialer
// falls back to HTTP/2 on the same port number, remembers the failure, and
// tries QUIC again once the fallback period has passed.
func TestDialerFallsBackWhenUDPIsDropped(t *testing.T) {
	m := newMesh()
	tcpAddr := h2Echo(t, m)
	// A UDP socket on the same port that never answers: packets are dropped.
	black, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(tcpAddr))
	if err != nil {
		t.Skipf("udp port %d in use: %v", tcpAddr.Port(), err)
	}
	defer black.Close()

	q := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID), HandshakeTimeout: 300 * time.Millisecond})
	h2 := newH2Pool(t, m)
	now := time.Unix(1000, 0)
	d := &Dialer{QUIC: q, H2: h2, FallbackPeriod: time.Minute, Now: func() time.Time { return now }}
	key := hbone.NewKey(clientID, []string{serverID}, tcpAddr, netip.Addr{})

	start := time.Now()
	s, transport, err := d.Dial(testCtx(t), key, "10.0.0.5:80", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if transport != TransportH2 {
		t.Fatalf("transport %s, want %s after the quic handshake timed out", transport, TransportH2)
	}
	roundTrip(t, s, "fallback")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("fallback took %s", took)
	}
	// Within the period, QUIC is not even tried: no handshake wait.
	s, transport, err = d.Dial(testCtx(t), key, "10.0.0.5:80", nil, true)
	if err != nil || transport != TransportH2 {
		t.Fatalf("second dial: %s, %v", transport, err)
	}
	roundTrip(t, s, "remembered")
	if !d.isBlocked(tcpAddr) {
		t.Error("destination not remembered as blocked")
	}
	now = now.Add(2 * time.Minute)
	if d.isBlocked(tcpAddr) {
		t.Error("destination still blocked after the fallback period")
	}
}

// TestDialerPrefersQUIC: with UDP open, an advertising destination is
// reached over QUIC, and a non-advertising one over HTTP/2.
func TestDialerPrefersQUIC(t *testing.T) {
	m := newMesh()
	tcpAddr := h2Echo(t, m)
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(tcpAddr))
	if err != nil {
		t.Skipf("udp port %d in use: %v", tcpAddr.Port(), err)
	}
	srv := &Server{TLSConfig: m.serverTLS(t, serverID), HandleStream: echoStreams}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, pc) }()
	defer func() { cancel(); <-done; _ = pc.Close() }()

	q := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	h2 := newH2Pool(t, m)
	d := &Dialer{QUIC: q, H2: h2}
	key := hbone.NewKey(clientID, []string{serverID}, tcpAddr, netip.Addr{})
	for _, tc := range []struct {
		advertised bool
		want       string
	}{{true, TransportQUIC}, {false, TransportH2}} {
		s, transport, err := d.Dial(testCtx(t), key, "10.0.0.5:80", nil, tc.advertised)
		if err != nil {
			t.Fatal(err)
		}
		if transport != tc.want {
			t.Errorf("advertised=%v: transport %s, want %s", tc.advertised, transport, tc.want)
		}
		roundTrip(t, s, "x")
	}
}

// TestDialerDoesNotFallBackOnRefusal: a status answer over QUIC is final.
func TestDialerDoesNotFallBackOnRefusal(t *testing.T) {
	m := newMesh()
	addr := startServer(t, &Server{
		TLSConfig:    m.serverTLS(t, serverID),
		HandleStream: func(_ context.Context, req *Request) { _ = req.Reject(http.StatusUnauthorized) },
	})
	q := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	h2 := newH2Pool(t, m)
	d := &Dialer{QUIC: q, H2: h2}
	_, transport, err := d.Dial(testCtx(t), hbone.NewKey(clientID, []string{serverID}, addr, netip.Addr{}), "10.0.0.5:80", nil, true)
	var se *hbone.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusUnauthorized || transport != TransportQUIC {
		t.Fatalf("dial: %s, %v; want the 401 over QUIC", transport, err)
	}
	if d.isBlocked(addr) {
		t.Error("a refusal marked the destination as blocked")
	}
}

// TestDialerRecoversFromReplacedServer: the QUIC server behind a pooled
// connection is replaced by a new one on the same address (a ztunnel
// restart) that does not know the connection and drops its packets. The
// next dial falls back to HTTP/2 instead of waiting for the dead
// connection, and after the fallback period QUIC works again over a new
// connection rather than the dead one.
func TestDialerRecoversFromReplacedServer(t *testing.T) {
	m := newMesh()
	tcpAddr := h2Echo(t, m)
	pc1, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(tcpAddr))
	if err != nil {
		t.Skipf("udp port %d in use: %v", tcpAddr.Port(), err)
	}
	ctx1, stop1 := context.WithCancel(context.Background())
	done1 := make(chan error, 1)
	go func() {
		done1 <- (&Server{TLSConfig: m.serverTLS(t, serverID), HandleStream: echoStreams, DrainTimeout: time.Millisecond}).Serve(ctx1, pc1)
	}()

	q := newPool(t, PoolConfig{TLSConfig: m.clientTLS(t, clientID), HandshakeTimeout: 500 * time.Millisecond})
	h2 := newH2Pool(t, m)
	now := time.Unix(1000, 0)
	d := &Dialer{QUIC: q, H2: h2, FallbackPeriod: time.Minute, Now: func() time.Time { return now }}
	key := hbone.NewKey(clientID, []string{serverID}, tcpAddr, netip.Addr{})
	dial := func(want string) {
		t.Helper()
		s, transport, err := d.Dial(testCtx(t), key, "10.0.0.5:80", nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if transport != want {
			t.Fatalf("transport %s, want %s", transport, want)
		}
		roundTrip(t, s, want)
	}
	dial(TransportQUIC)

	// Replace the server: the old one stops without telling the client
	// (its socket closes under it), the new one binds the same port.
	_ = pc1.Close()
	stop1()
	if err := <-done1; err != nil {
		t.Logf("old server ended: %v", err) // expected: its socket was closed under it
	}
	pc2, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(tcpAddr))
	if err != nil {
		t.Fatalf("rebind udp %s: %v", tcpAddr, err)
	}
	defer pc2.Close()
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	go func() {
		_ = (&Server{TLSConfig: m.serverTLS(t, serverID), HandleStream: echoStreams, DrainTimeout: time.Millisecond}).Serve(ctx2, pc2)
	}()

	start := time.Now()
	dial(TransportH2)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("fallback took %s", took)
	}
	now = now.Add(2 * time.Minute)
	dial(TransportQUIC)
}

// newH2Pool returns an HTTP/2 HBONE pool with the client's identity,
// closed when the test ends.
func newH2Pool(t *testing.T, m *mesh) *hbone.Pool {
	t.Helper()
	h2, err := hbone.NewPool(hbone.PoolConfig{TLSConfig: func(k hbone.Key) (*tls.Config, error) { return m.clientTLS(t, clientID)(k) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Close() })
	return h2
}
