package httpproxy

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// h1Test runs serveH1 on one end of a pipe; the test talks on the other.
type h1Test struct {
	client net.Conn
	br     *bufio.Reader
	rest   chan net.Conn // what serveH1 returned
}

func startH1(t *testing.T, h http.Handler) *h1Test {
	t.Helper()
	return startH1Conns(t, h, &h1Conns{})
}

func startH1Conns(t *testing.T, h http.Handler, cs *h1Conns) *h1Test {
	t.Helper()
	client, server := net.Pipe()
	ht := &h1Test{client: client, br: bufio.NewReader(client), rest: make(chan net.Conn, 1)}
	go func() { ht.rest <- serveH1(context.Background(), cs, server, h, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	return ht
}

func (ht *h1Test) send(t *testing.T, raw string) {
	t.Helper()
	go func() { _, _ = io.WriteString(ht.client, raw) }()
}

// h1Resp is what a test reads of a response; its body was read and closed.
type h1Resp struct {
	StatusCode       int
	Header, Trailer  http.Header
	ContentLength    int64
	TransferEncoding []string
	Close            bool
}

func (ht *h1Test) read(t *testing.T, method string) (h1Resp, string) {
	t.Helper()
	resp, err := http.ReadResponse(ht.br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return h1Resp{StatusCode: resp.StatusCode, Header: resp.Header, Trailer: resp.Trailer, ContentLength: resp.ContentLength,
		TransferEncoding: resp.TransferEncoding, Close: resp.Close}, string(b)
}

func TestH1ResponseFraming(t *testing.T) {
	big := strings.Repeat("x", h1Pending+1)
	tests := []struct {
		name, method string
		h            http.HandlerFunc
		wantCode     int
		wantBody     string
		wantLength   int64
		wantTE       []string
		wantTrailer  http.Header
	}{
		{"small body gets a length", "GET", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") },
			200, "hello", 5, nil, nil},
		{"no body", "GET", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(403) }, 403, "", 0, nil, nil},
		{"large body is chunked", "GET", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, big) },
			200, big, -1, []string{"chunked"}, nil},
		{"flushed body is chunked", "GET", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "a")
			_ = http.NewResponseController(w).Flush()
			_, _ = io.WriteString(w, "b")
		}, 200, "ab", -1, []string{"chunked"}, nil},
		{"declared length", "GET", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "3")
			_, _ = io.WriteString(w, "abc")
		}, 200, "abc", 3, nil, nil},
		{"trailers", "GET", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "abc")
			w.Header().Set("X-Sum", "3")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		}, 200, "abc", -1, []string{"chunked"}, http.Header{"X-Sum": {"3"}, "X-Late": {"yes"}}},
		{"HEAD keeps the length", "HEAD", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "10")
		}, 200, "", 10, nil, nil},
		{"no content", "GET", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }, 204, "", 0, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ht := startH1(t, tt.h)
			ht.send(t, tt.method+" /x HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, body := ht.read(t, tt.method)
			if resp.StatusCode != tt.wantCode || body != tt.wantBody || resp.ContentLength != tt.wantLength {
				t.Errorf("got %d, %d bytes, length %d, want %d, %d bytes, length %d", resp.StatusCode, len(body), resp.ContentLength,
					tt.wantCode, len(tt.wantBody), tt.wantLength)
			}
			if d := cmp.Diff(tt.wantTE, resp.TransferEncoding); d != "" {
				t.Errorf("transfer encoding (-want +got):\n%s", d)
			}
			if tt.wantTrailer != nil {
				if d := cmp.Diff(tt.wantTrailer, resp.Trailer); d != "" {
					t.Errorf("trailers (-want +got):\n%s", d)
				}
			}
			if resp.Header.Get("Date") == "" {
				t.Error("no Date header")
			}
		})
	}
}

// TestH1KeepAliveAndPipelining: requests written back to back, one of
// them with a body the handler leaves unread, are answered in order on
// the same connection.
func TestH1KeepAliveAndPipelining(t *testing.T) {
	ht := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			b, _ := io.ReadAll(r.Body)
			_, _ = io.WriteString(w, "read "+string(b))
			return
		}
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path)
	}))
	ht.send(t, "POST /unread HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /read HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		"GET /last HTTP/1.1\r\nHost: a\r\n\r\n")
	var got []string
	for range 3 {
		_, body := ht.read(t, "GET")
		got = append(got, body)
	}
	if d := cmp.Diff([]string{"POST /unread", "read abc", "GET /last"}, got); d != "" {
		t.Errorf("responses (-want +got):\n%s", d)
	}
}

func TestH1ExpectContinue(t *testing.T) {
	ht := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, "got "+string(b))
	}))
	ht.send(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	line, err := ht.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("first line %q (%v), want a 100 Continue", line, err)
	}
	if blank, _ := ht.br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("100 Continue not ended: %q", blank)
	}
	ht.send(t, "body")
	if _, body := ht.read(t, "POST"); body != "got body" {
		t.Errorf("body %q", body)
	}
}

func TestH1ConnectionClose(t *testing.T) {
	ht := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "bye") }))
	ht.send(t, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	resp, body := ht.read(t, "GET")
	if body != "bye" || !resp.Close {
		t.Errorf("got %q close=%v, want the response to close", body, resp.Close)
	}
	if rest := <-ht.rest; rest != nil {
		t.Error("the loop handed the connection on instead of closing it")
	}
}

// TestH1HandsOff: an upgrade, HTTP/2's preface and HTTP/1.0 go to
// net/http's server with every byte the loop buffered.
func TestH1HandsOff(t *testing.T) {
	for name, raw := range map[string]string{
		"upgrade":  "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"connect":  "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
		"h2":       "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"http/1.0": "GET / HTTP/1.0\r\n\r\n",
		"expect":   "PUT / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n",
		// net/http's parser takes a bare LF as a line's end: a head with one
		// goes to the parser that reads it so, never vetted by lines of CRLF.
		"bare LF":                "GET / HTTP/1.1\nHost: a\n\n",
		"bare LF hides upgrade":  "GET /ws HTTP/1.1\r\nHost: a\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"bare LF then pipelined": "GET /ws HTTP/1.1\nHost: a\nUpgrade: websocket\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			ht := startH1(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("served by the loop") }))
			ht.send(t, raw)
			rest := <-ht.rest
			if rest == nil {
				t.Fatal("connection closed, not handed off")
			}
			b := make([]byte, len(raw))
			if _, err := io.ReadFull(rest, b); err != nil || string(b) != raw {
				t.Errorf("handed-off connection reads %q (%v), want %q", b, err, raw)
			}
		})
	}
}

func TestH1BadRequestAndAbort(t *testing.T) {
	for name, raw := range map[string]string{
		"bad length": "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
		// RFC 9112, section 3.2, as net/http's server answers.
		"no host":        "GET / HTTP/1.1\r\n\r\n",
		"absolute form":  "GET http://a/ HTTP/1.1\r\n\r\n",
		"malformed host": "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"two hosts":      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			ht := startH1(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("served") }))
			ht.send(t, raw)
			if resp, _ := ht.read(t, "GET"); resp.StatusCode != 400 {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	t.Run("aborted handler closes", func(t *testing.T) {
		ht := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "partial")
			panic(http.ErrAbortHandler)
		}))
		ht.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if rest := <-ht.rest; rest != nil {
			t.Error("connection handed off after an abort")
		}
		resp, err := http.ReadResponse(ht.br, nil)
		if err == nil {
			_ = resp.Body.Close()
			t.Error("an aborted response parsed as complete")
		}
	})
}

// TestH1ClientGoneCancels: a client that goes away while its request runs
// cancels the request's context; one that sends its next request early
// is served after it.
func TestH1ClientGoneCancels(t *testing.T) {
	cancelled := make(chan bool, 1)
	ht := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			select {
			case <-r.Context().Done():
				cancelled <- true
			case <-time.After(5 * time.Second):
				cancelled <- false
			}
			return
		}
		time.Sleep(2 * watchAfter)
		_, _ = io.WriteString(w, r.URL.Path)
	}))
	ht.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(watchAfter + 20*time.Millisecond) // the watch reads the next request's first byte
	ht.send(t, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"/slow", "/next"} {
		if _, body := ht.read(t, "GET"); body != want {
			t.Fatalf("body %q, want %q", body, want)
		}
	}
	ht.send(t, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(2 * watchAfter)
	_ = ht.client.Close()
	if !<-cancelled {
		t.Error("the request's context was not cancelled when its client went away")
	}
}

// TestH1BothLengthsClose: a request with both Transfer-Encoding and
// Content-Length is served by its chunked body and its connection is
// closed after the response (RFC 9112, section 6.1): a request pipelined
// behind it is not read.
func TestH1BothLengthsClose(t *testing.T) {
	ht := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.URL.Path+" "+string(b))
	}))
	ht.send(t, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := ht.read(t, "POST")
	if body != "/a abc" || !resp.Close {
		t.Errorf("got %q close=%v, want %q and the connection closed", body, resp.Close, "/a abc")
	}
	if rest := <-ht.rest; rest != nil {
		t.Error("connection handed off, want it closed")
	}
}

// TestH1UnreadBodyBounded: after the response, a body the handler left
// unread is read away only within the header timeout; a client that
// announced a body and does not send it loses the connection. A client
// that expects 100 Continue and got the final response without one is
// not waited for.
func TestH1UnreadBodyBounded(t *testing.T) {
	for name, tc := range map[string]struct {
		raw     string
		h       http.HandlerFunc
		timeout time.Duration
	}{
		"body never sent": {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab",
			func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(403) }, 200 * time.Millisecond},
		"answered before 100 continue": {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n",
			func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(403)
				_ = http.NewResponseController(w).Flush()
				_, _ = r.Body.Read(nil)
			}, time.Minute},
	} {
		t.Run(name, func(t *testing.T) {
			ht := startH1Conns(t, tc.h, &h1Conns{headerTimeout: tc.timeout})
			ht.send(t, tc.raw)
			if resp, _ := ht.read(t, "POST"); resp.StatusCode != 403 {
				t.Errorf("status %d, want 403", resp.StatusCode)
			}
			select {
			case rest := <-ht.rest:
				if rest != nil {
					t.Error("connection handed off, want it closed")
				}
			case <-time.After(3 * time.Second):
				t.Fatal("the loop still waits for the unsent body")
			}
		})
	}
}

// TestH1WriterOwnsFraming: the writer alone frames the response: a
// Transfer-Encoding the handler set is dropped, a Content-Length is
// written once and in digits, a field whose name is not a token is left
// out, and a 101 the handler sends ends the loop's use of the connection.
func TestH1WriterOwnsFraming(t *testing.T) {
	for _, tt := range []struct {
		name   string
		header http.Header
		code   int
		want   []string // the head's field lines but Date, sorted
	}{
		{"handler's transfer-encoding", http.Header{"Transfer-Encoding": {"chunked"}, "Content-Length": {"3"}}, 200,
			[]string{"Content-Length: 3"}},
		{"two lengths", http.Header{"Content-Length": {"3", "30"}}, 200, []string{"Content-Length: 3"}},
		{"signed length", http.Header{"Content-Length": {"+3"}}, 200, []string{"Content-Length: 3"}},
		{"name not a token", http.Header{"X-A\r\nX-Injected": {"1"}, "X B": {"2"}}, 200, []string{"Content-Length: 3"}},
		{"switching protocols", http.Header{}, 101, []string{"Connection: close"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ht := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				maps.Copy(w.Header(), tt.header)
				w.WriteHeader(tt.code)
				_, _ = io.WriteString(w, "abc")
			}))
			ht.send(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			var got []string
			if _, err := ht.br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			for {
				line, err := ht.br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if line == "\r\n" {
					break
				}
				if !strings.HasPrefix(line, "Date: ") {
					got = append(got, strings.TrimSuffix(line, "\r\n"))
				}
			}
			slices.Sort(got)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("head fields (-want +got):\n%s", d)
			}
			if tt.code == 101 {
				if rest := <-ht.rest; rest != nil {
					t.Error("connection handed off after a 101, want it closed")
				}
			}
		})
	}
}

// TestH1LateWatchIgnored: a watch timer of a request that ended, firing
// late, does not watch the request served after it (its read would race
// the loop's reads of that request's body).
func TestH1LateWatchIgnored(t *testing.T) {
	client, server := net.Pipe()
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	tr := &tunnelReader{c: server}
	old := tr.arm()
	tr.unwatch()
	tr.arm()
	tr.watch(old, func() { t.Error("a late watch cancelled the next request") })
	tr.mu.Lock()
	watching := tr.watched != nil
	tr.mu.Unlock()
	if watching {
		t.Error("a late watch reads the tunnel during the next request")
	}
	tr.unwatch()
}

// TestH1BodyReadAfterHandler: a goroutine the handler left reading the
// body (as http.Transport's writer does when the upstream answered
// early) is done with the tunnel's buffer before the loop lets it go,
// and reads nothing after the request is over.
func TestH1BodyReadAfterHandler(t *testing.T) {
	read := make(chan error, 1)
	ht := startH1(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started := make(chan struct{})
		go func() {
			close(started)
			_, err := r.Body.Read(make([]byte, 10))
			read <- err
		}()
		<-started
		time.Sleep(10 * time.Millisecond) // the read waits for the client
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "early")
	}))
	ht.send(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
	if _, body := ht.read(t, "POST"); body != "early" {
		t.Errorf("body %q", body)
	}
	if rest := <-ht.rest; rest != nil {
		t.Error("connection handed off, want it closed")
	}
	if err := <-read; err == nil {
		t.Error("the body read after the connection closed succeeded")
	}
}
