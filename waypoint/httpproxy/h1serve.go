package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The waypoint serves plain HTTP/1.1 requests on a tunnel with a loop of
// its own (serveH1) rather than net/http's server: net/http costs, per
// request, a goroutine that reads the connection in the background (on an
// HBONE stream it takes the connection's read role and must be kicked out
// of it when the handler returns) and three read deadlines (three timers
// on an HBONE stream); the loop here reads the next request where it
// serves it and keeps one timer per tunnel. Parsing is net/http's
// (http.ReadRequest); the loop owns only framing the response.
//
// The loop serves a request only if its head is plain: HTTP/1.1, not
// CONNECT, no Upgrade, no Expect other than 100-continue, and the head fits
// in the read buffer. At the first request that is not (or at HTTP/2's
// preface) it hands the rest of the tunnel, with the bytes it buffered, to
// net/http's server, which serves upgrades, h2c and the rest.

// h1BufSize is the read and write buffer size of a tunnel; a request head
// must fit in the read buffer to be served by the loop.
const h1BufSize = 8 << 10

// h1HeaderTimeout bounds reading a request head once its first byte came;
// h1IdleTimeout bounds waiting for the next request (as the net/http
// server's ReadHeaderTimeout and IdleTimeout).
const (
	h1HeaderTimeout = 30 * time.Second
	h1IdleTimeout   = 10 * time.Minute
)

// maxDiscard is how much of an unread request body is read away to keep
// the connection; past it, the connection is closed (as net/http does).
const maxDiscard = 256 << 10

var (
	h1Readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, h1BufSize) }}
	h1Writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h1BufSize) }}
)

// h1Conns tracks the tunnels the loop serves, so that a shutdown closes
// the idle ones at once and the busy ones after their request.
type h1Conns struct {
	// headerTimeout replaces h1HeaderTimeout when set (tests).
	headerTimeout time.Duration

	mu       sync.Mutex
	conns    map[*h1Conn]struct{}
	shutting atomic.Bool
}

// h1Conn is one tunnel the loop serves; busy while a request is read or
// served.
type h1Conn struct {
	c    net.Conn
	busy atomic.Bool
}

func (cs *h1Conns) add(c net.Conn) *h1Conn {
	hc := &h1Conn{c: c}
	cs.mu.Lock()
	if cs.conns == nil {
		cs.conns = map[*h1Conn]struct{}{}
	}
	cs.conns[hc] = struct{}{}
	cs.mu.Unlock()
	return hc
}

// headerWait bounds reading a request head, and reading away the body
// a handler left unread.
func (cs *h1Conns) headerWait() time.Duration {
	if cs.headerTimeout > 0 {
		return cs.headerTimeout
	}
	return h1HeaderTimeout
}

func (cs *h1Conns) remove(hc *h1Conn) {
	cs.mu.Lock()
	delete(cs.conns, hc)
	cs.mu.Unlock()
}

// shutdown makes every loop end after its request and closes the idle
// tunnels now.
func (cs *h1Conns) shutdown() {
	cs.shutting.Store(true)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for hc := range cs.conns {
		if !hc.busy.Load() {
			_ = hc.c.Close()
		}
	}
}

// serveH1 serves plain HTTP/1.1 requests on c with h until c ends (it
// returns nil, c closed) or a request needs net/http's server (it returns
// a connection that replays what was buffered; c is not closed).
func serveH1(ctx context.Context, cs *h1Conns, c net.Conn, h http.Handler, log *slog.Logger) net.Conn {
	hc := cs.add(c)
	defer cs.remove(hc)
	src := &tunnelReader{c: c}
	br := h1Readers.Get().(*bufio.Reader)
	br.Reset(src)
	bw := h1Writers.Get().(*bufio.Writer)
	bw.Reset(c)
	defer func() {
		bw.Reset(nil)
		h1Writers.Put(bw)
	}()
	// One timer per tunnel bounds idle waits and head reads; firing, it
	// closes the tunnel.
	timer := time.AfterFunc(h1IdleTimeout, func() { _ = c.Close() })
	defer timer.Stop()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	remote := c.RemoteAddr().String()
	w := &h1Writer{bw: bw, header: http.Header{}}
	for {
		hc.busy.Store(false)
		if cs.shutting.Load() {
			break
		}
		timer.Reset(h1IdleTimeout)
		plain, head, err := peekHead(br, timer, cs.headerWait())
		hc.busy.Store(true)
		if err != nil {
			break
		}
		if !plain {
			timer.Stop()
			return &replayConn{Conn: c, br: br}
		}
		req, err := http.ReadRequest(br)
		timer.Stop()
		if err == nil && (head.hosts == 0 || !httpguts.ValidHostHeader(req.Host)) {
			// RFC 9112, section 3.2, checked as net/http's server checks it
			// (http.ReadRequest leaves it to the server).
			err = errBadHost
		}
		if err != nil {
			_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")
			break
		}
		if head.bothLengths {
			// Both Transfer-Encoding and Content-Length: net/http reads the
			// body as chunked and drops the length; the connection closes
			// after the response (RFC 9112, section 6.1), as another reader
			// may have framed it otherwise.
			req.Close = true
		}
		if !serveOne(ctx, w, br, src, req, remote, h, log, timer, cs.headerWait()) {
			break
		}
	}
	_ = c.Close()
	br.Reset(nil)
	h1Readers.Put(br)
	return nil
}

// serveOne serves req and reports whether the connection can carry the
// next request. timer, stopped, bounds reading away an unread body by
// drainTimeout.
func serveOne(ctx context.Context, w *h1Writer, br *bufio.Reader, src *tunnelReader, req *http.Request, remote string,
	h http.Handler, log *slog.Logger, timer *time.Timer, drainTimeout time.Duration) (keep bool) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req = req.WithContext(rctx)
	req.RemoteAddr = remote
	body := &h1Body{rc: req.Body, w: w, br: br}
	if req.Body != nil && req.Body != http.NoBody {
		body.expect = req.Header.Get("Expect") != ""
		req.Body = body
	}
	// A goroutine the handler left reading the body (http.Transport's
	// writer, when the upstream answered before the body was sent) must be
	// out of br before the loop reads it again or lets it go to the pool:
	// a connection that is not kept is closed first, which ends a read
	// waiting on it, then the body is shut, waiting for that read.
	defer func() {
		if !keep {
			_ = src.c.Close()
		}
		body.shut()
	}()
	req.Header.Del("Expect")
	w.reset(req)
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				log.Error("panic serving a request", "panic", p, "method", req.Method, "path", req.URL.Path)
			}
			keep = false
		}
	}()
	// A request still running after watchAfter watches its client: one
	// that goes away cancels it (as net/http's server does for every
	// request with a goroutine of its own).
	// The timer's function must not touch br (the loop may be reading it
	// again by then): whether the client is quiet (its body read and nothing
	// more buffered) is recorded where br is read; a generation keeps a late
	// timer from watching a later request.
	if body.done() {
		body.quiet.Store(br.Buffered() == 0)
	}
	gen := src.arm()
	watch := time.AfterFunc(watchAfter, func() {
		if body.quiet.Load() {
			src.watch(gen, cancel)
		}
	})
	defer func() {
		watch.Stop()
		src.unwatch()
	}()
	h.ServeHTTP(w, req)
	if err := w.finish(); err != nil || w.closeAfter {
		return false
	}
	if !body.done() && body.expect && !body.sentContinue {
		return false // the client waits for a 100 Continue never sent
	}
	if !drain(body, timer, drainTimeout) {
		return false
	}
	return br.Buffered() > 0 || ctx.Err() == nil
}

// drain reads away what the handler left of a request body, up to maxDiscard
// and within timeout (the timer closes the tunnel when it fires), and
// reports whether the connection can carry the next request.
func drain(body *h1Body, timer *time.Timer, timeout time.Duration) bool {
	if body.done() {
		return true
	}
	timer.Reset(timeout)
	n, err := io.CopyN(io.Discard, body, maxDiscard+1)
	return timer.Stop() && n <= maxDiscard && (err == nil || err == io.EOF)
}

// headInfo is what the loop learns of a plain head's fields beyond what
// http.ReadRequest keeps.
type headInfo struct {
	bothLengths bool // it names both Content-Length and Transfer-Encoding
	hosts       int  // its Host lines
}

var errBadHost = errors.New("missing or malformed Host header")

// peekHead waits for the next request's head in br and reports whether
// the loop can serve it, with what it names for a plain one. Once its
// first byte came, the head must arrive within headerTimeout.
func peekHead(br *bufio.Reader, timer *time.Timer, headerTimeout time.Duration) (plain bool, head headInfo, err error) {
	if _, err := br.Peek(1); err != nil {
		return false, head, err
	}
	timer.Reset(headerTimeout)
	for {
		// HTTP/2's preface, "PRI * HTTP/2.0\r\n\r\n...", reads as a head that
		// is not HTTP/1.1.
		b, _ := br.Peek(br.Buffered())
		if n, bareLF := headEnd(b); n >= 0 {
			// net/http's parser ends a line at a bare LF too: such a head is
			// left to it, so that what the loop vets is what it parses.
			if bareLF {
				return false, head, nil
			}
			plain, head := plainHead(b[:n])
			return plain, head, nil
		}
		if len(b) >= br.Size() {
			return false, head, nil // a head larger than the buffer: net/http's
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return false, head, err
		}
	}
}

// headEnd returns the length of the request head at the start of b up to
// the empty line that ends it (its lines with their line ends), or -1 if
// that line is not in b yet; bareLF says a line of it ends in LF alone.
func headEnd(b []byte) (n int, bareLF bool) {
	for start := 0; ; {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return -1, bareLF
		}
		i += start
		if i == 0 || b[i-1] != '\r' {
			bareLF = true
		}
		if line := b[start:i]; len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return start, bareLF
		}
		start = i + 1
	}
}

// plainHead reports whether a request head (request line and header
// lines, each ending in CRLF) is one the loop serves, and what it names.
func plainHead(head []byte) (plain bool, info headInfo) {
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if !bytes.HasSuffix(line, []byte(" HTTP/1.1")) || bytes.HasPrefix(line, []byte("CONNECT ")) {
		return false, info
	}
	var cl, te bool
	for len(rest) > 0 {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		name, value, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return false, info // let net/http's parser answer
		}
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")), bytes.EqualFold(name, []byte("HTTP2-Settings")):
			return false, info
		case bytes.EqualFold(name, []byte("Expect")):
			if !bytes.EqualFold(bytes.TrimSpace(value), []byte("100-continue")) {
				return false, info
			}
		case bytes.EqualFold(name, []byte("Host")):
			info.hosts++
		case bytes.EqualFold(name, []byte("Content-Length")):
			cl = true
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			te = true
		}
	}
	info.bothLengths = cl && te
	return true, info
}

// h1Body is a request body served by the loop: it sends 100 Continue at
// the first read of a client that expects it, and remembers its end.
type h1Body struct {
	// mu is held by a read; closed, once the request is over, fails reads.
	mu     sync.Mutex
	closed bool
	rc     io.ReadCloser
	w      *h1Writer
	expect bool
	// asked is set at the first read; sentContinue if it sent 100 Continue
	// (not when the final response had gone already).
	asked        bool
	sentContinue bool
	eof          atomic.Bool
	// br is the tunnel's read buffer; quiet is set at the body's end when
	// it holds nothing more (no pipelined request).
	br    *bufio.Reader
	quiet atomic.Bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.expect && !b.asked {
		b.asked = true
		if !b.w.committed {
			b.sentContinue = true
			_, _ = b.w.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n") // a failure shows in Flush
			if err := b.w.bw.Flush(); err != nil {
				return 0, err
			}
		}
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.quiet.Store(b.br.Buffered() == 0)
		b.eof.Store(true)
	}
	return n, err
}

// Close does nothing: what the handler left of the body is read away
// after it (drain), and the loop shuts the body when the request is over.
func (b *h1Body) Close() error { return nil }

// shut waits for a read in progress and fails the reads after it.
func (b *h1Body) shut() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

func (b *h1Body) done() bool { return b.rc == nil || b.rc == http.NoBody || b.eof.Load() }

// watchAfter is how long a request runs before its client is watched.
const watchAfter = 50 * time.Millisecond

// tunnelReader is the source of a tunnel's read buffer. While a request
// runs, watch reads the tunnel in a goroutine of its own to learn that the
// client went away; a byte it reads meanwhile (the next request) is kept
// for the buffer.
type tunnelReader struct {
	c       net.Conn
	mu      sync.Mutex
	gen     uint64        // counts arms and unwatches: a watch of an older one is too late
	watched chan struct{} // closed when the watching read returned
	kept    []byte
	err     error
	one     [1]byte
}

func (t *tunnelReader) Read(p []byte) (int, error) {
	t.mu.Lock()
	if len(t.kept) > 0 {
		n := copy(p, t.kept)
		t.kept = t.kept[n:]
		t.mu.Unlock()
		return n, nil
	}
	err := t.err
	t.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return t.c.Read(p)
}

// watch starts reading the tunnel; if the read fails (the client closed
// or reset it), gone is called. Called at most once per request, from a
// timer; unwatch ends it.
func (t *tunnelReader) watch(gen uint64, gone func()) {
	t.mu.Lock()
	if t.gen != gen || t.watched != nil {
		t.mu.Unlock()
		return
	}
	done := make(chan struct{})
	t.watched = done
	t.mu.Unlock()
	go func() { // owned by unwatch, which waits for it
		defer close(done)
		n, err := t.c.Read(t.one[:])
		t.mu.Lock()
		defer t.mu.Unlock()
		if n > 0 {
			t.kept = append(t.kept[:0], t.one[0])
		}
		var ne net.Error
		if err != nil && (!errors.As(err, &ne) || !ne.Timeout()) {
			t.err = err
			gone()
		}
	}()
}

// arm allows one watch for the request about to be served, by the
// generation it returns.
func (t *tunnelReader) arm() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen++
	return t.gen
}

// unwatch stops a watching read, if one was started, and waits for it; a
// watch for the same arm that comes later (a late timer) is not started.
func (t *tunnelReader) unwatch() {
	t.mu.Lock()
	t.gen++
	done := t.watched
	t.mu.Unlock()
	if done == nil {
		return
	}
	_ = t.c.SetReadDeadline(time.Unix(1, 0))
	<-done
	_ = t.c.SetReadDeadline(time.Time{})
	t.mu.Lock()
	t.watched = nil
	t.mu.Unlock()
}

// replayConn reads what br buffered before reading its connection.
type replayConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// CloseWrite half-closes the tunnel (used by upgraded connections).
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

var errHijack = errors.New("httpproxy: hijacking is served by net/http only")
