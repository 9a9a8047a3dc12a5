package upstream

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FuzzH1Request: whatever the method, path, header and body, the bytes H1
// sends are either refused or exactly one request that net/http's server
// parser reads back with the same method, header value and body, and
// nothing after it (no header injection, no smuggled second request).
func FuzzH1Request(f *testing.F) {
	f.Add("GET", "/a/b", "X-A", "v", []byte(nil))
	f.Add("POST", "/upload", "Content-Type", "text/plain", []byte("payload"))
	f.Add("POST", "/x", "X-A", "a\r\nX-B: b", []byte("1"))
	f.Add("PUT", "/%2F?", "Transfer-Encoding", "chunked", []byte("0\r\n\r\nGET / HTTP/1.1\r\n\r\n"))
	f.Add("DELETE", "/ü", "Content-Length", "5", []byte("abc"))
	f.Add("0", "/", "content-Length", "0", []byte("0")) // a key not in canonical case
	f.Fuzz(func(t *testing.T, method, path, name, value string, body []byte) {
		if len(body) > SmallBody {
			return
		}
		r := &http.Request{Method: method, URL: &url.URL{Path: path}, Host: "svc.demo:80",
			Header: http.Header{name: {value}}, Body: http.NoBody, ContentLength: int64(len(body))}
		if len(body) > 0 {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		out, err := appendRequest(nil, r)
		if err != nil {
			return
		}
		br := bufio.NewReader(bytes.NewReader(out))
		got, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("sent bytes do not parse: %v\n%q", err, out)
		}
		gotBody, err := io.ReadAll(got.Body)
		if err != nil {
			t.Fatalf("sent body does not parse: %v\n%q", err, out)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("bytes after the request: %q\nsent %q", rest, out)
		}
		if got.Method != method || !bytes.Equal(gotBody, body) || got.Host != r.Host {
			t.Fatalf("parsed %q %q host %q, sent %q %q host %q", got.Method, gotBody, got.Host, method, body, r.Host)
		}
		switch http.CanonicalHeaderKey(name) {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer", "Expect":
			return
		}
		if v := got.Header.Values(name); len(v) != 1 || v[0] != strings.Trim(value, " \t") {
			t.Fatalf("header %q parsed as %q, sent %q", name, v, value)
		}
	})
}

// FuzzH1Response: whatever an upstream answers, an exchange ends (with a
// response or an error) without hanging or panicking, and a connection is
// kept for reuse only after a complete response with nothing after it.
func FuzzH1Response(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nto the end"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		ep := netip.MustParseAddrPort("10.0.0.1:80")
		var server net.Conn
		h := &H1{smallBody: SmallBody, idle: newIdlePool(time.Minute, 4),
			dial: func(context.Context, netip.AddrPort) (net.Conn, error) {
				c, s := net.Pipe()
				server = s
				go func() {
					defer s.Close()
					if _, err := http.ReadRequest(bufio.NewReader(s)); err != nil {
						return
					}
					_, _ = s.Write(answer)
				}()
				return c, nil
			}}
		defer h.idle.close(true)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ep.String()+"/", nil)
		resp, err := h.RoundTrip(req)
		if err != nil {
			return
		}
		_, rerr := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if ctx.Err() != nil {
			t.Fatalf("exchange hung: %q", answer)
		}
		c := h.idle.get(ep)
		if c == nil {
			return
		}
		defer c.close()
		if rerr != nil || resp.Close {
			t.Fatalf("connection kept after an incomplete or closing response (%v): %q", rerr, answer)
		}
		if c.br.Buffered() > 0 {
			t.Fatalf("connection kept with unread bytes: %q", answer)
		}
		_ = server
	})
}
