package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/waypoint/retry"
)

// scriptServer serves HTTP/1.1 on loopback: for each request it reads
// (head and body) it records the request and writes answer(n), n counting
// the server's requests from 0; an answer ending in "\x00close" closes the
// connection after it is written (without the marker).
type scriptServer struct {
	addr     netip.AddrPort
	accepted atomic.Int64
	mu       sync.Mutex
	reqs     []*http.Request
	bodies   []string
}

func newScriptServer(t testing.TB, answer func(r *http.Request, n int) string) *scriptServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	s := &scriptServer{addr: netip.MustParseAddrPort(ln.Addr().String())}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(r.Body)
					s.mu.Lock()
					n := len(s.reqs)
					s.reqs, s.bodies = append(s.reqs, r), append(s.bodies, string(body))
					s.mu.Unlock()
					a, closing := strings.CutSuffix(answer(r, n), "\x00close")
					if _, err := io.WriteString(c, a); err != nil || closing {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *scriptServer) request(i int) (*http.Request, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[i], s.bodies[i]
}

func newTestH1(t testing.TB) *H1 {
	t.Helper()
	tr := NewTransports(newTestDialer(t), time.Minute)
	t.Cleanup(tr.Close)
	return tr.HTTP1
}

// send runs one request through h and returns the status, body and
// trailer X-T.
func send(t testing.TB, h *H1, method string, ep netip.AddrPort, body string, hdr map[string]string) (int, string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+ep.String()+"/p?q=1", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "echo.demo.svc.cluster.local"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.RoundTrip(req)
	if err != nil {
		return 0, "", "", err
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, string(b), resp.Trailer.Get("X-T"), err
}

func TestH1KeepsConnectionsAlive(t *testing.T) {
	s := newScriptServer(t, func(*http.Request, int) string { return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" })
	h := newTestH1(t)
	for i := range 3 {
		code, body, _, err := send(t, h, "POST", s.addr, "payload", map[string]string{"Expect": "100-continue", "X-A": "b"})
		if err != nil || code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	if n := s.accepted.Load(); n != 1 {
		t.Errorf("%d connections for 3 requests, want 1", n)
	}
	r, body := s.request(0)
	got := map[string]string{"method": r.Method, "uri": r.RequestURI, "host": r.Host, "body": body,
		"x-a": r.Header.Get("X-A"), "expect": r.Header.Get("Expect"), "proto": r.Proto}
	want := map[string]string{"method": "POST", "uri": "/p?q=1", "host": "echo.demo.svc.cluster.local", "body": "payload",
		"x-a": "b", "expect": "", "proto": "HTTP/1.1"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("request as the server saw it (-want +got):\n%s", d)
	}
}

func TestH1ResponseFraming(t *testing.T) {
	tests := []struct {
		name, method, answer  string
		wantCode              int
		wantBody, wantTrailer string
		wantReuse             bool
	}{
		{"content length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", "", true},
		{"chunked with trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n0\r\nX-T: t1\r\n\r\n", 200, "hello", "t1", true},
		{"HEAD with a length", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 200, "", "", true},
		{"no content", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", "", true},
		{"informational first", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", "", true},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 200, "ok", "", false},
		{"close delimited", "GET", "HTTP/1.1 200 OK\r\n\r\nuntil close\x00close", 200, "until close", "", false},
		{"HTTP/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScriptServer(t, func(_ *http.Request, n int) string {
				if n == 0 {
					return tt.answer
				}
				return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
			})
			h := newTestH1(t)
			code, body, trailer, err := send(t, h, tt.method, s.addr, "", nil)
			if err != nil || code != tt.wantCode || body != tt.wantBody || trailer != tt.wantTrailer {
				t.Fatalf("got %d %q trailer %q (%v), want %d %q trailer %q", code, body, trailer, err, tt.wantCode, tt.wantBody, tt.wantTrailer)
			}
			code, body, _, err = send(t, h, "GET", s.addr, "", nil)
			if err != nil || code != 200 || body != "next" {
				t.Fatalf("second request: %d %q %v", code, body, err)
			}
			wantConns := int64(2)
			if tt.wantReuse {
				wantConns = 1
			}
			if n := s.accepted.Load(); n != wantConns {
				t.Errorf("%d connections, want %d", n, wantConns)
			}
		})
	}
}

// TestH1StaleConnection: a kept connection the server closed is found
// when it is used (every reuse probes it), and a reused connection the
// server closes after reading the request, with no answer, sends an
// idempotent request again on a new one, and a POST that reached the
// server is not.
func TestH1StaleConnection(t *testing.T) {
	t.Run("closed while idle", func(t *testing.T) {
		s := newScriptServer(t, func(*http.Request, int) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\x00close"
		})
		h := newTestH1(t)
		for _, method := range []string{"GET", "POST", "POST"} {
			time.Sleep(50 * time.Millisecond) // the server's close arrives
			if code, _, _, err := send(t, h, method, s.addr, "x", nil); err != nil || code != 200 {
				t.Fatalf("%s: %d %v", method, code, err)
			}
		}
	})
	// The second request (n == 1) is read and the connection closed.
	dropSecond := func(_ *http.Request, n int) string {
		if n == 1 {
			return "\x00close"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	}
	for _, tt := range []struct {
		method       string
		wantResent   bool
		wantAccepted int64
	}{{"GET", true, 2}, {"POST", false, 1}} {
		t.Run(tt.method+" dropped", func(t *testing.T) {
			s := newScriptServer(t, dropSecond)
			h := newTestH1(t)
			if _, _, _, err := send(t, h, tt.method, s.addr, "x", nil); err != nil {
				t.Fatal(err)
			}
			code, _, _, err := send(t, h, tt.method, s.addr, "x", nil)
			if tt.wantResent && (err != nil || code != 200) {
				t.Errorf("%d %v, want it sent again and answered", code, err)
			}
			if !tt.wantResent && !errors.Is(err, retry.ErrReset) {
				t.Errorf("error %v, want it not sent again and marked as a reset", err)
			}
			if n := s.accepted.Load(); n != tt.wantAccepted {
				t.Errorf("%d connections, want %d", n, tt.wantAccepted)
			}
		})
	}
}

// TestH1BodiesBeyondItsReachGoToFallback: streaming and large bodies go
// to the fallback transport, which streams them.
func TestH1BodiesBeyondItsReachGoToFallback(t *testing.T) {
	h := &H1{smallBody: SmallBody}
	for _, tt := range []struct {
		name string
		n    int64
		body bool
		want bool
	}{
		{"no body", 0, false, true},
		{"small", 10, true, true},
		{"at the limit", SmallBody, true, true},
		{"large", SmallBody + 1, true, false},
		{"unknown length", -1, true, false},
	} {
		r := &http.Request{ContentLength: tt.n, Body: http.NoBody}
		if tt.body {
			r.Body = io.NopCloser(strings.NewReader("x"))
		}
		if got := h.own(r); got != tt.want {
			t.Errorf("%s: own = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestH1ContextEndsExchange: a request whose context ends while the
// server has not answered returns the context's error, and one whose body
// is being read is cut off.
func TestH1ContextEndsExchange(t *testing.T) {
	s := newScriptServer(t, func(r *http.Request, _ int) string {
		if r.URL.Path == "/body" {
			return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
		}
		time.Sleep(2 * time.Second)
		return ""
	})
	h := newTestH1(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr.String()+"/", nil)
	if resp, err := h.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			_ = resp.Body.Close()
		}
		t.Errorf("unanswered: error %v, want the deadline", err)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	req, _ = http.NewRequestWithContext(ctx2, "GET", "http://"+s.addr.String()+"/body", nil)
	resp, err := h.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	cancel2()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("reading a cancelled body succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reading a cancelled body did not end")
	}
	_ = resp.Body.Close()
}

func TestH1RejectsInvalidRequests(t *testing.T) {
	h := newTestH1(t)
	for name, mod := range map[string]func(r *http.Request){
		"header value with CRLF": func(r *http.Request) { r.Header["X-A"] = []string{"a\r\nX-Injected: 1"} },
		"header name":            func(r *http.Request) { r.Header["X A"] = []string{"a"} },
		"host":                   func(r *http.Request) { r.Host = "a b" },
		"method":                 func(r *http.Request) { r.Method = "GE T" },
		"space in the query":     func(r *http.Request) { r.URL.RawQuery = "a=1 HTTP/1.1" },
		"control in the path":    func(r *http.Request) { r.URL.Opaque = "/a\x7fb" },
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://127.0.0.1:1/", nil)
			mod(req)
			resp, err := h.RoundTrip(req)
			if err == nil {
				_ = resp.Body.Close()
			}
			if err == nil || retry.Classify(err) != retry.KindOther {
				t.Errorf("error %v (%v), want a plain error", err, retry.Classify(err))
			}
		})
	}
}

// partialConn writes half of what it is given, then fails.
type partialConn struct {
	net.Conn
}

func (c partialConn) Write(p []byte) (int, error) { return len(p) / 2, errors.New("stream reset") }

// TestH1PartialWriteNotResent: a write that fails after part of the
// request left may have delivered the request's head: a POST is not sent
// again, a GET is.
func TestH1PartialWriteNotResent(t *testing.T) {
	ep := netip.MustParseAddrPort("127.0.0.1:1")
	for _, tt := range []struct {
		method    string
		wantDials int64
	}{{"POST", 0}, {"GET", 1}} {
		t.Run(tt.method, func(t *testing.T) {
			var dials atomic.Int64
			h := &H1{idle: newIdlePool(time.Minute, 4), smallBody: SmallBody,
				dial: func(context.Context, netip.AddrPort) (net.Conn, error) {
					dials.Add(1)
					return nil, errors.New("no more connections")
				}}
			a, b := net.Pipe()
			t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
			h.idle.put(ep, newH1Conn(partialConn{a}))
			var body io.Reader
			if tt.method == "POST" {
				body = strings.NewReader("x")
			}
			req, _ := http.NewRequest(tt.method, "http://"+ep.String()+"/", body)
			resp, err := h.RoundTrip(req)
			if err == nil {
				_ = resp.Body.Close()
				t.Fatal("round trip succeeded")
			}
			if n := dials.Load(); n != tt.wantDials {
				t.Errorf("%d new connections after the partial write, want %d", n, tt.wantDials)
			}
		})
	}
}

// TestH1ResponseHeadBounded: a response head larger than maxResponseHead
// fails the exchange instead of growing without bound.
func TestH1ResponseHeadBounded(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	s := newScriptServer(t, func(*http.Request, int) string {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\n")
		for i := 0; b.Len() < 2*maxResponseHead; i++ {
			b.WriteString("X-Big: " + big + "\r\n")
		}
		return b.String() + "Content-Length: 0\r\n\r\n"
	})
	h := newTestH1(t)
	if _, _, _, err := send(t, h, "GET", s.addr, "", nil); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("error %v, want the response head too large", err)
	}
}

// TestH1UnsolicitedBytesNotReadAsResponse: bytes a server sends after a
// response ended (a body longer than its Content-Length, in a later
// write) are not taken as the next request's response, however soon the
// connection is reused.
func TestH1UnsolicitedBytesNotReadAsResponse(t *testing.T) {
	s := newScriptServer(t, func(_ *http.Request, n int) string {
		if n == 0 {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"
	})
	h := newTestH1(t)
	inner := h.dial
	h.dial = func(ctx context.Context, ep netip.AddrPort) (net.Conn, error) {
		c, err := inner(ctx, ep)
		if err != nil {
			return nil, err
		}
		return &strayConn{Conn: c, stray: "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"}, nil
	}
	if _, body, _, err := send(t, h, "GET", s.addr, "", nil); err != nil || body != "ok" {
		t.Fatalf("first request: %q %v", body, err)
	}
	time.Sleep(50 * time.Millisecond) // the stray bytes arrive
	if _, body, _, err := send(t, h, "GET", s.addr, "", nil); err != nil || body != "real" {
		t.Errorf("second request: %q (%v), want %q", body, err, "real")
	}
}

// strayConn adds stray bytes after the first response it reads, as if the
// server had sent them later.
type strayConn struct {
	net.Conn
	once  sync.Once
	stray string
	extra []byte
}

func (c *strayConn) Read(p []byte) (int, error) {
	if len(c.extra) > 0 {
		n := copy(p, c.extra)
		c.extra = c.extra[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() { c.extra = []byte(c.stray) })
	}
	return n, err
}
