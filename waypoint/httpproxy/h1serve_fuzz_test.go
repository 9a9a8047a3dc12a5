package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzServeH1: whatever a client sends, the loop ends (closing the tunnel
// or handing it to net/http) without panicking or hanging, and what it
// answered is a sequence of well-formed responses, one per request it
// served, each framed so the client can find the next.
func FuzzServeH1(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(0))
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /y HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(1))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"), uint8(2))
	f.Add([]byte("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(3))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: x\r\n\r\n"), uint8(0))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nz"), uint8(1))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), uint8(2))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\nUpgrade: x\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), uint8(0))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, mode uint8) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch mode % 4 {
			case 0: // small answer, body unread
				_, _ = io.WriteString(w, r.Method)
			case 1: // echo the body
				_, _ = io.Copy(w, r.Body)
			case 2: // streamed with a trailer
				w.Header().Set("Trailer", "X-N")
				_, _ = io.WriteString(w, strings.Repeat("y", h1Pending+1))
				_ = http.NewResponseController(w).Flush()
				w.Header().Set("X-N", "1")
			case 3: // declared length, short body
				w.Header().Set("Content-Length", "5")
				_, _ = io.WriteString(w, "ab")
			}
		})
		client, server := net.Pipe()
		defer client.Close()
		done := make(chan net.Conn, 1)
		go func() { done <- serveH1(context.Background(), &h1Conns{}, server, h, slog.New(slog.DiscardHandler)) }()
		var out bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			_, _ = io.Copy(&out, client)
		}()
		go func() {
			_, _ = client.Write(in)
			// A client that stopped sending: the loop must end when
			// its input is gone, not wait for more.
			time.Sleep(10 * time.Millisecond)
			_ = server.Close()
		}()
		select {
		case rest := <-done:
			if rest != nil {
				_ = rest.Close()
			}
			_ = server.Close()
		case <-time.After(5 * time.Second):
			t.Fatalf("the loop did not end on %q", in)
		}
		<-read
		br := bufio.NewReader(&out)
		for {
			if _, err := br.Peek(1); err != nil {
				return
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("malformed answer %q to %q: %v", out.Bytes(), in, err)
			}
			if resp.StatusCode == http.StatusContinue {
				_ = resp.Body.Close()
				continue
			}
			_, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				return // a short declared body ends the connection there
			}
		}
	})
}
