package upstream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// H1 sends HTTP/1.1 requests upstream. A request without a body, or with a
// body of known length up to SmallBody, is an exchange H1 runs itself in
// the caller's goroutine: the head and the whole body leave in one write
// on a kept-alive connection, and the response is read where it is
// needed, with no writer or reader goroutine to hand over to (what
// http.Transport costs per request). Any other request (a streaming or
// large body, which must flow both ways at once) goes to Fallback, an
// http.Transport over the same dialer.
//
// On H1's own exchanges: an "Expect: 100-continue" is answered by the
// waypoint and not forwarded (the body is read before the request is
// sent, as Envoy does by default); informational 1xx responses are
// skipped; a request that fails on a reused connection before any byte of
// the response arrived is sent once more on a new connection (its body is
// in memory), unless its method is not idempotent and the request may
// have reached the server. Errors are marked as Transport's are.
//
// H1 is safe for concurrent use.
type H1 struct {
	// Fallback takes the requests H1 does not run itself.
	Fallback *Transport

	dial      func(ctx context.Context, ep netip.AddrPort) (net.Conn, error)
	idle      *idlePool
	smallBody int64
}

var _ http.RoundTripper = (*H1)(nil)

// SmallBody is the largest request body H1 buffers to send with the head.
const SmallBody = 16 << 10

// maxInformational bounds the 1xx responses skipped before the final one.
const maxInformational = 5

// maxResponseHead bounds a response head (status line and header
// fields), as net/http's server bounds a request's (http.DefaultMaxHeaderBytes).
const maxResponseHead = 1 << 20

var errH1Closed = errors.New("upstream: http/1.1 connection closed")

// RoundTrip implements http.RoundTripper.
func (t *H1) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.own(r) {
		return t.Fallback.RoundTrip(r)
	}
	ctx := r.Context()
	if err := ctx.Err(); err != nil {
		closeBody(r)
		return nil, err
	}
	ep, err := netip.ParseAddrPort(r.URL.Host)
	if err != nil {
		closeBody(r)
		return nil, fmt.Errorf("upstream: endpoint %q: %w", r.URL.Host, err)
	}
	bp := writeBufs.Get().(*[]byte)
	defer putWriteBuf(bp)
	buf, err := appendRequest((*bp)[:0], r)
	closeBody(r)
	if err != nil {
		return nil, err
	}
	*bp = buf
	for fresh := false; ; fresh = true {
		c, err := t.conn(ctx, ep, fresh)
		if err != nil {
			return nil, err
		}
		resp, retryable, err := c.exchange(ctx, r, buf)
		if err == nil {
			resp.Body = &h1Body{c: c, t: t, ep: ep, body: resp.Body, close: resp.Close}
			return resp, nil
		}
		c.close()
		if retryable && c.reused && !fresh && ctx.Err() == nil {
			continue
		}
		return nil, markReset(ctx, err)
	}
}

// own reports whether H1 runs r itself.
func (t *H1) own(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return r.ContentLength <= 0
	}
	return r.ContentLength > 0 && r.ContentLength <= t.smallBody
}

// conn returns an idle connection to ep, or a new one when fresh or when
// none is idle.
func (t *H1) conn(ctx context.Context, ep netip.AddrPort, fresh bool) (*h1Conn, error) {
	if !fresh {
		if c := t.idle.get(ep); c != nil {
			return c, nil
		}
	}
	nc, err := t.dial(ctx, ep)
	if err != nil {
		return nil, err
	}
	return newH1Conn(nc), nil
}

// CloseIdleConnections closes the idle connections of H1 and of Fallback.
func (t *H1) CloseIdleConnections() {
	t.idle.close(false)
	t.Fallback.CloseIdleConnections()
}

// h1Conn is one kept-alive HTTP/1.1 connection.
type h1Conn struct {
	nc     net.Conn
	br     *bufio.Reader
	cr     countingReader
	probe  *socketProbe // nil when nc is no socket
	reused bool
	// stop ends the context watch of the exchange in progress.
	stop func() bool
	// idleSince is when the connection was last put back.
	idleSince time.Time
}

func newH1Conn(nc net.Conn) *h1Conn {
	c := &h1Conn{nc: nc, probe: newSocketProbe(nc)}
	c.cr.r = nc
	c.br = bufio.NewReaderSize(&c.cr, 4<<10)
	return c
}

func (c *h1Conn) close() { _ = c.nc.Close() }

// exchange writes the request bytes and reads the response head. On
// failure, retryable says the request may be sent again on another
// connection: nothing of a response arrived and either the write failed
// or the method is idempotent.
func (c *h1Conn) exchange(ctx context.Context, r *http.Request, req []byte) (*http.Response, bool, error) {
	c.stop = context.AfterFunc(ctx, c.close)
	fail := func(err error, retryable bool) (*http.Response, bool, error) {
		c.stop()
		if cerr := ctx.Err(); cerr != nil {
			return nil, false, cerr
		}
		return nil, retryable, err
	}
	if n, err := c.nc.Write(req); err != nil {
		// A write that failed after some bytes left may have delivered the
		// request (its head, at least) to the server.
		return fail(fmt.Errorf("write request: %w", err), n == 0 || replayable(r))
	}
	read := c.cr.n
	for range maxInformational + 1 {
		c.cr.limit = c.cr.n + int64(c.br.Buffered()) + maxResponseHead
		resp, err := http.ReadResponse(c.br, r)
		c.cr.limit = 0
		if err != nil {
			return fail(fmt.Errorf("read response: %w", err), c.cr.n == read && replayable(r))
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return fail(errors.New("read response: 101 Switching Protocols to a request that asked for no upgrade"), false)
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			continue
		}
		return resp, false, nil
	}
	return fail(errors.New("read response: too many informational responses"), false)
}

// replayable reports whether r may be sent again after it possibly
// reached the server, as http.Transport decides.
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := r.Header["Idempotency-Key"]
	_, xkey := r.Header["X-Idempotency-Key"]
	return key || xkey
}

// alive reports whether an idle connection still looks usable: nothing
// arrived on it (no close, no stray bytes). Every reuse probes it, however
// short its idle time: bytes a server sent after a response's end would
// otherwise be read as the next request's response.
//
// A socket is probed with one non-blocking read (socketProbe): a read
// under a deadline already passed fails on a socket before it looks at
// it. Other connections (tunnel streams) report what they hold before
// the deadline.
func (c *h1Conn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.probe != nil {
		return c.probe.alive()
	}
	if err := c.nc.SetReadDeadline(time.Unix(1, 0)); err != nil {
		return false
	}
	_, err := c.br.Peek(1)
	_ = c.nc.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// countingReader counts the bytes read through it; while limit is set, it
// fails reads past it.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
}

var errHeadTooLarge = errors.New("response head too large")

func (cr *countingReader) Read(p []byte) (int, error) {
	if cr.limit > 0 {
		if cr.n >= cr.limit {
			return 0, errHeadTooLarge
		}
		p = p[:min(int64(len(p)), cr.limit-cr.n)]
	}
	n, err := cr.r.Read(p)
	cr.n += int64(n)
	return n, err
}

// h1Body is a response body of one of H1's exchanges: at its end the
// connection is kept for the next request, or closed if the response
// asked for that, if the body broke, or if it was closed unread.
type h1Body struct {
	c     *h1Conn
	t     *H1
	ep    netip.AddrPort
	body  io.ReadCloser
	close bool
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, errH1Closed
	}
	n, err := b.body.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

// Close ends the exchange; a body not read to its end closes the
// connection.
func (b *h1Body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *h1Body) finish(complete bool) {
	b.done = true
	if b.c.stop() && complete && !b.close {
		b.t.idle.put(b.ep, b.c)
		return
	}
	b.c.close()
}

// appendRequest appends r as HTTP/1.1 bytes to buf: the request line, the
// Host, the headers, the body's framing and the body itself, read from
// r.Body (which must be nil, empty or of known length).
func appendRequest(buf []byte, r *http.Request) ([]byte, error) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !httpguts.ValidHostHeader(host) {
		return buf, fmt.Errorf("upstream: invalid Host %q", host)
	}
	if !validMethod(r.Method) {
		return buf, fmt.Errorf("upstream: invalid method %q", r.Method)
	}
	uri := r.URL.RequestURI()
	if !strings.HasPrefix(uri, "/") && (uri != "*" || r.Method != http.MethodOptions) || !validTarget(uri) {
		return buf, fmt.Errorf("upstream: invalid request target %q", uri)
	}
	buf = append(buf, r.Method...)
	buf = append(buf, ' ')
	buf = append(buf, uri...)
	buf = append(buf, " HTTP/1.1\r\nHost: "...)
	buf = append(buf, host...)
	buf = append(buf, "\r\n"...)
	for k, vs := range r.Header {
		if framingHeader(k) {
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return buf, fmt.Errorf("upstream: invalid header field name %q", k)
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return buf, fmt.Errorf("upstream: invalid header field value for %q", k)
			}
			buf = append(buf, k...)
			buf = append(buf, ": "...)
			buf = append(buf, v...)
			buf = append(buf, "\r\n"...)
		}
	}
	n := r.ContentLength
	if r.Body == nil || r.Body == http.NoBody {
		n = 0
	}
	if n > 0 || !methodLacksBody(r.Method) {
		buf = append(buf, "Content-Length: "...)
		buf = strconv.AppendInt(buf, n, 10)
		buf = append(buf, "\r\n"...)
	}
	buf = append(buf, "\r\n"...)
	if n == 0 {
		return buf, nil
	}
	head := len(buf)
	buf = slices.Grow(buf, int(n))[:head+int(n)]
	if _, err := io.ReadFull(r.Body, buf[head:]); err != nil {
		return buf[:head], fmt.Errorf("read request body: %w", err)
	}
	return buf, nil
}

// validTarget reports whether a request target has no space or control
// byte, which would end it early in the request line (url.URL keeps
// RawQuery and Opaque as they came).
func validTarget(uri string) bool {
	for i := range len(uri) {
		if uri[i] <= ' ' || uri[i] == 0x7f {
			return false
		}
	}
	return true
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := range len(m) {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// framingHeader reports whether k names a header appendRequest writes
// itself or never sends. A Header map built by hand may hold a key in any
// case, so the match ignores case: a "content-length" key must not add a
// second length beside ours.
func framingHeader(k string) bool {
	for _, f := range [...]string{"Host", "Content-Length", "Transfer-Encoding", "Trailer", "Expect"} {
		if len(k) == len(f) && strings.EqualFold(k, f) {
			return true
		}
	}
	return false
}

// methodLacksBody names the methods sent without a Content-Length when
// their body is empty, as net/http does.
func methodLacksBody(m string) bool {
	switch m {
	case "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
		return true
	}
	return false
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// writeBufs holds request buffers: a head and a small body.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func putWriteBuf(bp *[]byte) {
	if cap(*bp) <= 2*SmallBody {
		*bp = (*bp)[:0]
		writeBufs.Put(bp)
	}
}
