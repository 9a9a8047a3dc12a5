package hbone

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2/hpack"
)

// DefaultMaxStreamsPerPeer bounds the concurrent streams of one client
// identity across all its connections.
const DefaultMaxStreamsPerPeer = 10000

// Handler serves CONNECT streams. ServeHBONE runs on its own goroutine per
// stream; it must answer the request (Accept or Reject). When it returns
// the stream is closed, and a request it left unanswered gets 503. ctx is
// cancelled when the connection closes or the server is shut down hard.
type Handler interface {
	ServeHBONE(ctx context.Context, req *Request)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request)

// ServeHBONE calls f.
func (f HandlerFunc) ServeHBONE(ctx context.Context, req *Request) { f(ctx, req) }

// Server accepts HBONE connections. Its fields must not change after Serve
// is called; one Server may Serve several listeners.
type Server struct {
	// Handler serves each accepted CONNECT stream. Required.
	Handler Handler
	// TLSConfig is the mTLS server configuration. It must require and
	// verify client certificates (identity.ServerConfig does), pick the
	// certificate per destination (GetCertificate), and offer ALPN "h2";
	// connections that did not negotiate h2 or carry no client certificate
	// are closed. Required.
	TLSConfig *tls.Config
	// Limits tunes each connection; zero fields take defaults.
	Limits Limits
	// MaxStreamsPerPeer bounds concurrent streams per client identity
	// across connections (default DefaultMaxStreamsPerPeer); streams over
	// it are refused with REFUSED_STREAM.
	MaxStreamsPerPeer int
	// DrainTimeout bounds the graceful drain when Serve's context ends
	// (default 30 s); streams still open then are cut.
	DrainTimeout time.Duration
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger

	mu    sync.Mutex
	peers map[string]int // open streams per client identity, all listeners
}

// connSet tracks the connections of one Serve call.
type connSet struct {
	mu       sync.Mutex
	conns    map[*conn]struct{}
	draining bool
}

// add tracks c and reports whether the set is still accepting (false once
// draining: the caller shuts c down at once).
func (cs *connSet) add(c *conn) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.conns[c] = struct{}{}
	return !cs.draining
}

func (cs *connSet) remove(c *conn) {
	cs.mu.Lock()
	delete(cs.conns, c)
	cs.mu.Unlock()
}

func (cs *connSet) snapshot(drain bool) []*conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if drain {
		cs.draining = true
	}
	out := make([]*conn, 0, len(cs.conns))
	for c := range cs.conns {
		out = append(out, c)
	}
	return out
}

// Serve accepts connections on ln until ctx ends, then closes ln, sends
// GOAWAY on every connection, waits for their streams to finish (at most
// DrainTimeout), closes them and returns nil. It returns an error if
// accepting fails for another reason.
func (srv *Server) Serve(ctx context.Context, ln net.Listener) error {
	if srv.Handler == nil || srv.TLSConfig == nil {
		return errors.New("hbone: server needs a Handler and a TLSConfig")
	}
	lim := srv.Limits.withDefaults(true)
	log := srv.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	connCtx, cancelConns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConns()
	set := &connSet{conns: make(map[*conn]struct{})}
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var acceptErr error
	var backoff acceptBackoff
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !errors.Is(err, net.ErrClosed) && backoff.wait(ctx) {
				// Out of file descriptors or similar: retry, as net/http does.
				log.Warn("hbone accept failed, retrying", "err", err)
				continue
			}
			acceptErr = fmt.Errorf("hbone: accept: %w", err)
			break
		}
		backoff.reset()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.serveTLS(connCtx, set, nc, lim, log); err != nil {
				log.Debug("hbone connection refused", "remote", nc.RemoteAddr().String(), "err", err)
			}
		}()
	}
	_ = ln.Close()
	srv.drain(set)
	cancelConns()
	wg.Wait()
	return acceptErr
}

// drain sends GOAWAY on every connection of set and waits for them to
// close, at most DrainTimeout; connections still open then are cut.
func (srv *Server) drain(set *connSet) {
	timeout := srv.DrainTimeout
	if timeout == 0 {
		timeout = DefaultDrainTimeout
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, c := range set.snapshot(true) {
		c.shutdown()
	}
	for {
		open := set.snapshot(false)
		if len(open) == 0 {
			return
		}
		select {
		case <-open[0].done:
		case <-deadline.C:
			for _, c := range set.snapshot(false) {
				c.fail(fmt.Errorf("drain timeout: %w", errConnClosed))
			}
			return
		}
	}
}

func (srv *Server) serveTLS(ctx context.Context, set *connSet, nc net.Conn, lim Limits, log *slog.Logger) error {
	hctx, cancel := context.WithTimeout(ctx, lim.HandshakeTimeout)
	defer cancel()
	tc := tls.Server(newCorkConn(nc), srv.TLSConfig)
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = nc.Close()
		return fmt.Errorf("tls handshake: %w", err)
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != "h2" {
		_ = tc.Close()
		return fmt.Errorf("negotiated ALPN %q, want h2", cs.NegotiatedProtocol)
	}
	if len(cs.PeerCertificates) == 0 {
		_ = tc.Close()
		return errors.New("client presented no certificate")
	}
	return srv.serveConn(ctx, set, tc, cs.PeerCertificates, lim, log)
}

// serveConn runs HTTP/2 on an established (normally TLS) connection until
// it closes.
func (srv *Server) serveConn(ctx context.Context, set *connSet, nc net.Conn, peer []*x509.Certificate, lim Limits, log *slog.Logger) error {
	_ = nc.SetReadDeadline(time.Now().Add(lim.HandshakeTimeout))
	var pre [len(clientPreface)]byte
	if _, err := io.ReadFull(nc, pre[:]); err != nil || string(pre[:]) != clientPreface {
		_ = nc.Close()
		if err == nil {
			err = errors.New("bad client preface")
		}
		return fmt.Errorf("read preface: %w", err)
	}
	_ = nc.SetReadDeadline(time.Time{})
	c := newConn(nc, lim, false, log)
	identity := ""
	if len(peer) > 0 {
		identity = PeerIdentity(peer[0])
	}
	c.peerID = identity
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.onRequest = func(s *Stream, fields []hpack.HeaderField, tooBig bool) {
		srv.onRequest(connCtx, s, fields, tooBig, identity, peer)
	}
	c.onStreamDone = func(s *Stream) {
		if s.release != nil {
			s.release()
		}
	}
	c.onClose = func(*conn) { cancel() }
	accepting := set.add(c)
	defer set.remove(c)
	if err := c.start(); err != nil {
		c.fail(err)
		return err
	}
	if !accepting {
		c.shutdown()
	}
	go func() {
		select {
		case <-ctx.Done():
			c.fail(fmt.Errorf("server stopped: %w", errConnClosed))
		case <-c.done:
		}
	}()
	<-c.done
	return nil
}

// onRequest runs on the reader of the connection: it validates the request, applies the
// per-peer limit and starts the handler.
func (srv *Server) onRequest(ctx context.Context, s *Stream, fields []hpack.HeaderField, tooBig bool, identity string, peer []*x509.Certificate) {
	head, status, reason := parseRequest(fields, tooBig)
	if status != 0 {
		s.c.log.Debug("hbone request rejected", "status", status, "reason", reason, "peer", identity)
		go func() { _ = s.reject(status) }()
		return
	}
	maxPeer := srv.MaxStreamsPerPeer
	if maxPeer == 0 {
		maxPeer = DefaultMaxStreamsPerPeer
	}
	srv.mu.Lock()
	if srv.peers == nil {
		srv.peers = make(map[string]int)
	}
	if srv.peers[identity] >= maxPeer {
		srv.mu.Unlock()
		s.reset(ErrCodeRefusedStream, false)
		return
	}
	srv.peers[identity]++
	srv.mu.Unlock()
	s.release = func() {
		srv.mu.Lock()
		if srv.peers[identity]--; srv.peers[identity] <= 0 {
			delete(srv.peers, identity)
		}
		srv.mu.Unlock()
	}
	req := &Request{
		Authority:        head.authority,
		PeerIdentity:     identity,
		PeerCertificates: peer,
		Forwarded:        head.forwarded,
		Baggage:          head.baggage,
		Traceparent:      head.traceparent,
		Header:           head.header,
		LocalAddr:        s.local,
		RemoteAddr:       s.remote,
		stream:           s,
	}
	go func() {
		defer func() { _ = s.Close() }()
		srv.Handler.ServeHBONE(ctx, req)
		if !req.answered {
			_ = req.Reject(http.StatusServiceUnavailable)
		}
	}()
}

// acceptBackoff spaces out retries after transient accept errors: 5 ms
// doubling to 1 s.
type acceptBackoff struct{ d time.Duration }

// wait sleeps for the next delay; it reports false if ctx ended first.
func (b *acceptBackoff) wait(ctx context.Context) bool {
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (b *acceptBackoff) reset() { b.d = 0 }
