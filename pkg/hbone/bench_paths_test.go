package hbone

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// benchConn is one tunnel of a benchmarked path, seen from the client.
type benchConn interface {
	io.ReadWriter
	CloseWrite() error
	Close() error
}

// benchPath is a transport compared in the benchmarks: a server running
// serveBench in mode ("sink" or "echo") and a client connection to it.
type benchPath struct {
	name string
	open func(tb testing.TB, m *mesh, mode string) benchConn
}

var benchPaths = []benchPath{
	{"tcp", openTCP},
	{"tls", openTLS},
	{"h2stock", openStockH2},
	{"hbone", openHBONE},
}

// serveBench is the server side of every path: "sink" reads to EOF with a
// 32 KiB buffer and answers "ok"; "echo" copies back what it reads.
func serveBench(mode string, rw benchConn) {
	buf := make([]byte, 32<<10)
	switch mode {
	case "sink":
		for {
			if _, err := rw.Read(buf); err != nil {
				break
			}
		}
		_, _ = rw.Write([]byte("ok"))
	case "echo":
		for {
			n, err := rw.Read(buf)
			if n > 0 {
				if _, werr := rw.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
	}
	_ = rw.CloseWrite()
}

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	return ln
}

func acceptLoop(ln net.Listener, serve func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
}

func openTCP(tb testing.TB, _ *mesh, mode string) benchConn {
	ln := listen(tb)
	acceptLoop(ln, func(c net.Conn) { serveBench(mode, c.(*net.TCPConn)); _ = c.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c.(*net.TCPConn)
}

func openTLS(tb testing.TB, m *mesh, mode string) benchConn {
	ln := listen(tb)
	scfg := m.serverTLS(tb, serverID)
	acceptLoop(ln, func(c net.Conn) {
		tc := tls.Server(c, scfg)
		serveBench(mode, tc)
		_ = tc.Close()
	})
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ccfg, err := m.clientTLS(tb, clientID)(NewKey(clientID, []string{serverID}, addr, netip.Addr{}))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := tls.Dial("tcp", addr.String(), ccfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// h2Handler serves CONNECT with net/http's own HTTP/2 server.
type h2ServerConn struct {
	body io.Reader
	w    http.ResponseWriter
	rc   *http.ResponseController
}

func (h *h2ServerConn) Read(p []byte) (int, error) { return h.body.Read(p) }
func (h *h2ServerConn) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	if err == nil {
		err = h.rc.Flush()
	}
	return n, err
}
func (h *h2ServerConn) CloseWrite() error { return nil } // returning from the handler ends the stream
func (h *h2ServerConn) Close() error      { return nil }

type h2ClientConn struct {
	pw   *io.PipeWriter
	body io.ReadCloser
}

func (h *h2ClientConn) Read(p []byte) (int, error)  { return h.body.Read(p) }
func (h *h2ClientConn) Write(p []byte) (int, error) { return h.pw.Write(p) }
func (h *h2ClientConn) CloseWrite() error           { return h.pw.Close() }
func (h *h2ClientConn) Close() error {
	_ = h.pw.Close()
	return h.body.Close()
}

func openStockH2(tb testing.TB, m *mesh, mode string) benchConn {
	return openStockH2Server(tb, m, mode).dial(tb)
}

// stockH2 is a net/http HTTP/2 server and a client transport to it.
type stockH2 struct {
	tr   *http.Transport
	addr string
}

func (s *stockH2) dial(tb testing.TB) benchConn { return dialStockH2(tb, s.tr, s.addr) }

func openStockH2Shared(tb testing.TB, m *mesh) *stockH2 { return openStockH2Server(tb, m, "sink") }

func openStockH2Server(tb testing.TB, m *mesh, mode string) *stockH2 {
	ln := listen(tb)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodConnect {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusOK)
			rc := http.NewResponseController(w)
			_ = rc.Flush()
			serveBench(mode, &h2ServerConn{body: r.Body, w: w, rc: rc})
		}),
		TLSConfig: m.serverTLS(tb, serverID),
		ErrorLog:  log.New(io.Discard, "", 0),
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: 20000},
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	tb.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ccfg, err := m.clientTLS(tb, clientID)(NewKey(clientID, []string{serverID}, addr, netip.Addr{}))
	if err != nil {
		tb.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: ccfg, ForceAttemptHTTP2: true}
	tb.Cleanup(tr.CloseIdleConnections)
	return &stockH2{tr: tr, addr: addr.String()}
}

func dialStockH2(tb testing.TB, tr *http.Transport, addr string) benchConn {
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodConnect, "https://"+addr, pr)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := tr.RoundTrip(req) //nolint:bodyclose // closed by the returned conn (test cleanup)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		tb.Fatalf("stock CONNECT: %s %s", resp.Proto, resp.Status)
	}
	c := &h2ClientConn{pw: pw, body: resp.Body}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func openHBONE(tb testing.TB, m *mesh, mode string) benchConn {
	srv := &Server{
		Handler: HandlerFunc(func(_ context.Context, r *Request) {
			s, err := r.Accept()
			if err == nil {
				serveBench(mode, s)
			}
		}),
		TLSConfig:    m.serverTLS(tb, serverID),
		DrainTimeout: time.Second,
	}
	addr, _ := startServer(tb, srv)
	pool, err := NewPool(PoolConfig{TLSConfig: m.clientTLS(tb, clientID)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pool.Close() })
	s, err := pool.Dial(context.Background(), NewKey(clientID, []string{serverID}, addr, netip.Addr{}), "10.0.0.1:8080", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

var errShortAck = errors.New("sink did not acknowledge")
