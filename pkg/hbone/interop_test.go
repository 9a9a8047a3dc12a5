package hbone

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// stockEcho is a CONNECT echo handler for net/http servers.
func stockEcho(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// TestInteropClientWithStockServer runs our pool against golang.org/x/net's
// HTTP/2 server.
func TestInteropClientWithStockServer(t *testing.T) {
	m := newMesh()
	ln := listen(t)
	scfg := m.serverTLS(t, serverID)
	h2srv := &http2.Server{} //nolint:staticcheck // x/net/http2 interop is the point
	gotAuthority := make(chan string, 4)
	acceptLoop(ln, func(c net.Conn) {
		tc := tls.Server(c, scfg)
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return
		}
		h2srv.ServeConn(tc, &http2.ServeConnOpts{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { //nolint:staticcheck // x/net/http2 interop is the point
			gotAuthority <- r.Host + " " + r.Header.Get("Baggage")
			stockEcho(w, r)
		})})
	})
	pool, err := NewPool(PoolConfig{TLSConfig: m.clientTLS(t, clientID)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pool.Close() }()
	key := NewKey(clientID, []string{serverID}, ln.Addr().(*net.TCPAddr).AddrPort(), netip.Addr{})
	for i := range 3 { // several streams on the same connection
		s, err := pool.Dial(context.Background(), key, "10.1.2.3:9090", http.Header{"Baggage": {"service.name=x"}})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		payload := make([]byte, 2<<20+i) // beyond x/net's default windows
		_, _ = rand.Read(payload)
		go func() {
			_, _ = s.Write(payload)
			_ = s.CloseWrite()
		}()
		back, err := io.ReadAll(s)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if !bytes.Equal(back, payload) {
			t.Fatalf("echo: got %d bytes, want %d", len(back), len(payload))
		}
		_ = s.Close()
		if got := <-gotAuthority; got != "10.1.2.3:9090 service.name=x" {
			t.Errorf("stock server saw %q", got)
		}
	}
	if st := pool.Stats()[key]; st.Conns != 1 {
		t.Errorf("pool stats %+v, want one connection", st)
	}
}

// TestInteropServerWithStockClient runs golang.org/x/net's HTTP/2 client
// against our server: CONNECT with a streaming body, and other methods.
func TestInteropServerWithStockClient(t *testing.T) {
	got := make(chan *Request, 1)
	h := HandlerFunc(func(ctx context.Context, r *Request) {
		got <- r
		echoHandler().ServeHBONE(ctx, r)
	})
	ts := newSetup(t, h, nil, nil)
	ccfg, err := ts.mesh.clientTLS(t, clientID)(ts.key)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http2.Transport{TLSClientConfig: ccfg} //nolint:staticcheck // x/net/http2 interop is the point
	defer tr.CloseIdleConnections()               //nolint:staticcheck // x/net/http2 interop is the point

	t.Run("CONNECT echo with half-close", func(t *testing.T) {
		pr, pw := io.Pipe()
		req, err := http.NewRequest(http.MethodConnect, "https://"+ts.addr.String(), pr)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "10.9.8.7:443"
		req.Header.Set("Forwarded", `for="10.0.0.2:5555"`)
		resp, err := tr.RoundTrip(req) //nolint:staticcheck // x/net/http2 interop is the point
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		payload := make([]byte, 5<<20)
		_, _ = rand.Read(payload)
		go func() {
			_, _ = pw.Write(payload)
			_ = pw.Close()
		}()
		back, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("ReadAll: %v", err)
		}
		if !bytes.Equal(back, payload) {
			t.Fatalf("echo: got %d bytes, want %d", len(back), len(payload))
		}
		r := <-got
		if r.Authority != "10.9.8.7:443" || r.Forwarded != `for="10.0.0.2:5555"` || r.PeerIdentity != clientID {
			t.Errorf("request = %q %q %q", r.Authority, r.Forwarded, r.PeerIdentity)
		}
	})
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method+" is answered 400", func(t *testing.T) {
			req, err := http.NewRequest(method, "https://"+ts.addr.String()+"/x", strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req) //nolint:staticcheck // x/net/http2 interop is the point
			if err != nil {
				t.Fatalf("RoundTrip: %v", err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	t.Run("handler 401", func(t *testing.T) {
		deny := newSetup(t, HandlerFunc(func(_ context.Context, r *Request) { _ = r.Reject(http.StatusUnauthorized) }), nil, nil)
		cfg, _ := deny.mesh.clientTLS(t, clientID)(deny.key)
		tr := &http2.Transport{TLSClientConfig: cfg} //nolint:staticcheck // x/net/http2 interop is the point
		defer tr.CloseIdleConnections()              //nolint:staticcheck // x/net/http2 interop is the point
		pr, pw := io.Pipe()
		defer func() { _ = pw.Close() }()
		req, _ := http.NewRequest(http.MethodConnect, "https://"+deny.addr.String(), pr)
		resp, err := tr.RoundTrip(req) //nolint:staticcheck // x/net/http2 interop is the point
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
}

// TestInteropStockClientDrain drains our server under a stock client with a
// stream open: the stream finishes normally and Serve returns after it.
func TestInteropStockClientDrain(t *testing.T) {
	m := newMesh()
	srv := &Server{Handler: echoHandler(), TLSConfig: m.serverTLS(t, serverID), DrainTimeout: 10 * time.Second}
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ccfg, err := m.clientTLS(t, clientID)(NewKey(clientID, []string{serverID}, addr, netip.Addr{}))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http2.Transport{TLSClientConfig: ccfg} //nolint:staticcheck // x/net/http2 interop is the point
	defer tr.CloseIdleConnections()               //nolint:staticcheck // x/net/http2 interop is the point
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodConnect, "https://"+addr.String(), pr)
	resp, err := tr.RoundTrip(req) //nolint:staticcheck // x/net/http2 interop is the point
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	cancel() // drain: GOAWAY to the stock client
	time.Sleep(50 * time.Millisecond)
	go func() {
		_, _ = pw.Write([]byte("draining"))
		_ = pw.Close()
	}()
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "draining" {
		t.Fatalf("stream during drain: %q, %v", b, err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the stock client's stream ended")
	}
}
