package httpproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/weftmesh/weft/waypoint/backend"
	"github.com/weftmesh/weft/waypoint/flow"
	"github.com/weftmesh/weft/waypoint/tcpproxy"
	"github.com/weftmesh/weft/waypoint/telemetry"
)

// upgrade passes an HTTP/1.1 Upgrade (websocket) or a CONNECT through: the
// request is written to a fresh tunnel to the endpoint as received, and once
// the endpoint answers 101 (or 2xx to CONNECT) bytes flow both ways.
func (h *Handler) upgrade(w *countingWriter, r *http.Request, f *flow.Flow, t target, b *backend.Backend, rec *telemetry.Request) {
	addrs := h.endpoints(t)
	if len(addrs) == 0 {
		rec.Labels.ResponseFlags = "UH"
		localReply(w, http.StatusServiceUnavailable, "no healthy upstream")
		return
	}
	ep, done := b.Pick(addrs)
	rec.Upstream, rec.Attempts = ep, 1
	start := time.Now()
	up, err := h.cfg.Dialer.Dial(r.Context(), ep, nil)
	done(time.Since(start), err)
	if err != nil {
		rec.Labels.ResponseFlags, rec.Err = "UF", err
		localReply(w, http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers")
		return
	}
	defer func() { _ = up.Close() }()
	if r.ProtoMajor != 1 {
		rec.Err = errors.New("upgrades are passed through for HTTP/1.1 only")
		localReply(w, http.StatusNotImplemented, "upgrade not supported over HTTP/2")
		return
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	if r.Method != http.MethodConnect {
		out.URL.Scheme, out.URL.Host = "", ""
	}
	if err := out.Write(up); err != nil {
		rec.Labels.ResponseFlags, rec.Err = "UF", err
		localReply(w, http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers")
		return
	}
	br := bufio.NewReader(up)
	resp, err := http.ReadResponse(br, out)
	if err != nil {
		rec.Labels.ResponseFlags, rec.Err = "UR", err
		localReply(w, http.StatusBadGateway, "upstream reset before headers")
		return
	}
	defer resp.Body.Close()
	switched := resp.StatusCode == http.StatusSwitchingProtocols ||
		(r.Method == http.MethodConnect && resp.StatusCode/100 == 2)
	if !switched {
		copyResponse(w, resp, rec)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		rec.Err = fmt.Errorf("hijack: %w", err)
		return
	}
	defer func() { _ = conn.Close() }()
	w.code = resp.StatusCode
	// Send the upstream's answer (headers only) and anything the client
	// already sent beyond its request, then splice.
	resp.Body = http.NoBody
	resp.ContentLength = -1
	if err := writeHead(conn, resp); err != nil {
		rec.Err = err
		return
	}
	client := net.Conn(&bufferedConn{Conn: conn, r: io.MultiReader(brw.Reader, conn)})
	server := net.Conn(&bufferedConn{Conn: up, r: br})
	sent, recv, err := tcpproxy.Splice(client, server)
	w.n += recv
	_ = sent
	rec.Err = err
}

// writeHead writes resp's status line and headers.
func writeHead(w io.Writer, resp *http.Response) error {
	if _, err := fmt.Fprintf(w, "HTTP/1.1 %s\r\n", resp.Status); err != nil {
		return err
	}
	if err := resp.Header.Write(w); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\r\n")
	return err
}

// bufferedConn reads through r (bytes already buffered, then the conn).
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
