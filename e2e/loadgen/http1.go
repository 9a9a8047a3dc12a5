package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// BodySize is the size of the request and response bodies (1 KiB).
const BodySize = 1024

// httpConn is one keep-alive HTTP/1.1 client connection that POSTs a
// fixed 1 KiB body and reads the whole answer. Not safe for concurrent use.
type httpConn struct {
	addr string
	req  []byte
	c    net.Conn
	br   *bufio.Reader
}

func newHTTPConn(addr, host, path string) *httpConn {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", path, host, BodySize)
	req := append([]byte(head), make([]byte, BodySize)...)
	return &httpConn{addr: addr, req: req}
}

// do sends one request, dialling first if needed, and reads its answer. On
// any error the connection is dropped so the next call dials afresh.
func (h *httpConn) do(ctx context.Context) error {
	if h.c == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", h.addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", h.addr, err)
		}
		h.c, h.br = c, bufio.NewReaderSize(c, 8192)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = h.c.SetDeadline(dl)
	}
	if err := h.roundTrip(); err != nil {
		h.close()
		return err
	}
	return nil
}

func (h *httpConn) roundTrip() error {
	if _, err := h.c.Write(h.req); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.Close {
		h.close()
	}
	return nil
}

func (h *httpConn) close() {
	if h.c != nil {
		_ = h.c.Close()
		h.c, h.br = nil, nil
	}
}

// oneShot dials addr, sends one request, reads the answer and closes: one
// new connection's worth of work. With serverCloses the request asks for
// Connection: close, so the server closes first; otherwise the client
// closes once it has the answer.
func oneShot(ctx context.Context, addr, host string, serverCloses bool, timeout time.Duration) error {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(timeout))
	req := "GET /small HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	if serverCloses {
		req = "GET /small HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	}
	if _, err := io.WriteString(c, req); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// hostOf returns the Host header value for addr.
func hostOf(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if _, err := strconv.Atoi(p); err != nil || p == "80" {
		return h
	}
	return addr
}
