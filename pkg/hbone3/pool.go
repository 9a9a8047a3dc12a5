package hbone3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/weftmesh/weft/pkg/hbone"
)

// DefaultHandshakeTimeout bounds a QUIC handshake; a destination whose UDP
// is blocked fails this fast, so the Dialer can fall back to HTTP/2.
const DefaultHandshakeTimeout = 3 * time.Second

// PoolConfig configures a Pool.
type PoolConfig struct {
	// TLSConfig returns the mesh client configuration for a key
	// (identity.ClientConfig: the source's certificate, the server's chain
	// and identity verified). Its ALPN is replaced by h3. Required.
	TLSConfig func(hbone.Key) (*tls.Config, error)
	// PacketConn returns the UDP socket a key's connection uses; the pool
	// closes it with the connection. nil binds a new socket to Key.SrcIP
	// (or the unspecified address) on an ephemeral port.
	PacketConn func(ctx context.Context, key hbone.Key) (net.PacketConn, error)
	// MaxStreamsPerConn is the bidirectional stream limit the pool allows
	// its peers (default DefaultMaxStreamsPerConn).
	MaxStreamsPerConn int
	// IdleTimeout closes a connection idle this long (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds each handshake (default
	// DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
}

// Pool dials HBONE-over-QUIC connections and opens CONNECT streams and
// CONNECT-UDP flows on them. Streams of equal keys share one connection;
// QUIC multiplexes them without head-of-line blocking.
type Pool struct {
	cfg PoolConfig
	log *slog.Logger

	mu      sync.Mutex
	conns   map[hbone.Key]*poolConn
	dials   map[hbone.Key]*dialing
	retired map[*poolConn]struct{} // out of conns, streams still open
	closed  bool
}

// poolConn is one QUIC connection with its HTTP/3 client.
type poolConn struct {
	qc     *quic.Conn
	cc     *http3.ClientConn
	pc     net.PacketConn
	peerID string
}

// dialing lets concurrent callers for one key share a handshake.
type dialing struct {
	done chan struct{}
	c    *poolConn
	err  error
}

// NewPool returns a Pool. It starts no goroutine until the first Dial.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.TLSConfig == nil {
		return nil, errors.New("hbone3 pool: TLSConfig is required")
	}
	if cfg.MaxStreamsPerConn <= 0 {
		cfg.MaxStreamsPerConn = DefaultMaxStreamsPerConn
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pool{cfg: cfg, log: log, conns: map[hbone.Key]*poolConn{}, dials: map[hbone.Key]*dialing{},
		retired: map[*poolConn]struct{}{}}, nil
}

// ErrClosed is returned by Dial after Close.
var ErrClosed = errors.New("hbone3 pool: closed")

// Dial opens a CONNECT stream to authority ("host:port") over a pooled
// connection for key, sending hdr with the request. It returns a
// *hbone.StatusError when the server answers other than 200.
func (p *Pool) Dial(ctx context.Context, key hbone.Key, authority string, hdr http.Header) (*Stream, error) {
	var st *Stream
	err := p.attempt(ctx, key, func(c *poolConn) error {
		req := &http.Request{
			Method: http.MethodConnect,
			Host:   authority,
			URL:    &url.URL{Host: authority},
			Header: hdr.Clone(),
		}
		if req.Header == nil {
			req.Header = http.Header{}
		}
		str, err := p.open(ctx, key, c, req)
		if err != nil {
			return err
		}
		st = newStream(str, c.qc.LocalAddr(), c.qc.RemoteAddr(), c.peerID, nil)
		return nil
	})
	return st, err
}

// attempt runs try on key's connection. When try fails because a pooled
// connection ended under it (its server gone: a stateless reset answered
// the request, or a close came as it was sent), it runs once more on a new
// connection: the pool could not have known, and the destination may well
// be there (a pod enrolled again after its ztunnel let it go).
func (p *Pool) attempt(ctx context.Context, key hbone.Key, try func(*poolConn) error) error {
	c, pooled, err := p.conn(ctx, key)
	if err != nil {
		return err
	}
	err = try(c)
	if err == nil || !pooled || ctx.Err() != nil || !connEnded(c, err) {
		return err
	}
	p.log.Debug("hbone3 pooled connection ended under a request; retrying on a new one", "dst", key.DstAddr, "err", err)
	p.drop(key, c) // its context may not be done yet: the pool would hand it out again
	if c, _, err = p.conn(ctx, key); err != nil {
		return err
	}
	return try(c)
}

// DialUDP opens a CONNECT-UDP flow to target over a pooled connection for
// key. The server must have datagrams enabled.
func (p *Pool) DialUDP(ctx context.Context, key hbone.Key, target netip.AddrPort, hdr http.Header) (*DatagramConn, error) {
	var dc *DatagramConn
	err := p.attempt(ctx, key, func(c *poolConn) error {
		select {
		case <-c.cc.ReceivedSettings():
		case <-ctx.Done():
			return ctx.Err()
		case <-c.qc.Context().Done():
			return fmt.Errorf("hbone3 dial udp %s: connection closed before settings", key.DstAddr)
		}
		if s := c.cc.Settings(); !s.EnableDatagrams || !s.EnableExtendedConnect {
			return fmt.Errorf("hbone3 dial udp %s: server does not support connect-udp", key.DstAddr)
		}
		req := &http.Request{
			Method: http.MethodConnect,
			Proto:  ConnectUDP,
			Host:   key.DstAddr.String(),
			URL:    &url.URL{Scheme: "https", Host: key.DstAddr.String(), Path: udpPath(target)},
			Header: hdr.Clone(),
		}
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("Capsule-Protocol", "?1")
		str, err := p.open(ctx, key, c, req)
		if err != nil {
			return err
		}
		dc = newDatagramConn(str, target, c.qc.LocalAddr(), c.qc.RemoteAddr(), c.peerID, nil)
		return nil
	})
	return dc, err
}

// open sends req on a new stream of c and waits for a 2xx answer.
func (p *Pool) open(ctx context.Context, key hbone.Key, c *poolConn, req *http.Request) (*http3.RequestStream, error) {
	str, err := c.cc.OpenRequestStream(ctx)
	if err != nil {
		p.drop(key, c)
		return nil, fmt.Errorf("hbone3 dial %s: open stream: %w", key.DstAddr, err)
	}
	if err := str.SendRequestHeader(req.WithContext(ctx)); err != nil {
		str.CancelWrite(codeRequestCancel)
		return nil, fmt.Errorf("hbone3 dial %s: send request: %w", key.DstAddr, err)
	}
	// ReadResponse does not watch ctx: cancel the stream when ctx ends, so
	// that a connection whose path went dead (UDP blocked after the
	// handshake) cannot hold the caller until the idle timeout.
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(codeRequestCancel)
		str.CancelWrite(codeRequestCancel)
	})
	resp, err := str.ReadResponse() //nolint:bodyclose // a CONNECT body is the tunnel itself, read and closed through str
	if !stop() {
		if err == nil {
			str.CancelRead(codeRequestCancel)
			str.CancelWrite(codeRequestCancel)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// No answer in time: the connection may be dead without
			// knowing it (its server restarted on the same address and
			// drops its packets), so later dials make a new one.
			p.retire(key, c)
		}
		return nil, fmt.Errorf("hbone3 dial %s: no response: %w", key.DstAddr, ctx.Err())
	}
	if err != nil {
		str.CancelRead(codeRequestCancel)
		str.CancelWrite(codeRequestCancel)
		return nil, fmt.Errorf("hbone3 dial %s: read response: %w", key.DstAddr, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		str.CancelRead(codeNoError)
		_ = str.Close()
		return nil, &hbone.StatusError{Code: resp.StatusCode}
	}
	return str, nil
}

// connEnded reports whether err, from a request on c, says that c itself
// ended (not the request): c's context is done, or err is one of the
// connection-level errors, which a stream may report before c's context
// is cancelled.
func connEnded(c *poolConn, err error) bool {
	var status *hbone.StatusError
	if errors.As(err, &status) {
		return false
	}
	if c.qc.Context().Err() != nil {
		return true
	}
	var (
		reset *quic.StatelessResetError
		idle  *quic.IdleTimeoutError
		app   *quic.ApplicationError
		tr    *quic.TransportError
	)
	return errors.As(err, &reset) || errors.As(err, &idle) || errors.As(err, &app) || errors.As(err, &tr)
}

// conn returns the live connection for key, dialling it if needed;
// pooled says it was already in the pool.
func (p *Pool) conn(ctx context.Context, key hbone.Key) (c *poolConn, pooled bool, err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, false, ErrClosed
	}
	if c := p.conns[key]; c != nil {
		if c.qc.Context().Err() == nil {
			p.mu.Unlock()
			return c, true, nil
		}
		delete(p.conns, key)
		_ = c.pc.Close()
	}
	d := p.dials[key]
	if d == nil {
		d = &dialing{done: make(chan struct{})}
		p.dials[key] = d
		go p.dial(key, d)
	}
	p.mu.Unlock()
	select {
	case <-d.done:
		return d.c, false, d.err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// dial makes one connection for key. It runs on its own goroutine, bounded
// by HandshakeTimeout, so a caller giving up does not abort a handshake
// other callers share.
func (p *Pool) dial(key hbone.Key, d *dialing) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.HandshakeTimeout)
	defer cancel()
	c, err := p.handshake(ctx, key)
	p.mu.Lock()
	delete(p.dials, key)
	if err == nil && p.closed {
		_ = c.qc.CloseWithError(0, "pool closed")
		_ = c.pc.Close()
		c, err = nil, ErrClosed
	}
	if err == nil {
		p.conns[key] = c
	}
	p.mu.Unlock()
	d.c, d.err = c, err
	close(d.done)
}

func (p *Pool) handshake(ctx context.Context, key hbone.Key) (*poolConn, error) {
	base, err := p.cfg.TLSConfig(key)
	if err != nil {
		return nil, fmt.Errorf("hbone3 dial %s: tls config: %w", key.DstAddr, err)
	}
	tlsConf, err := forQUIC(base)
	if err != nil {
		return nil, err
	}
	pc, err := p.packetConn(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("hbone3 dial %s: udp socket: %w", key.DstAddr, err)
	}
	qc, err := quic.Dial(ctx, pc, net.UDPAddrFromAddrPort(key.DstAddr), tlsConf, withWindows(&quic.Config{
		HandshakeIdleTimeout:  p.cfg.HandshakeTimeout,
		MaxIdleTimeout:        p.cfg.IdleTimeout,
		KeepAlivePeriod:       p.cfg.IdleTimeout / 3,
		MaxIncomingStreams:    -1, // servers open no streams to us
		MaxIncomingUniStreams: 8,
		EnableDatagrams:       true,
	}))
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("hbone3 dial %s: %w", key.DstAddr, err)
	}
	cs := qc.ConnectionState().TLS
	if len(cs.PeerCertificates) == 0 {
		_ = qc.CloseWithError(0, "no certificate")
		_ = pc.Close()
		return nil, fmt.Errorf("hbone3 dial %s: server presented no certificate", key.DstAddr)
	}
	tr := &http3.Transport{EnableDatagrams: true}
	p.log.Debug("hbone3 connected", "dst", key.DstAddr, "peer", hbone.PeerIdentity(cs.PeerCertificates[0]))
	return &poolConn{qc: qc, cc: tr.NewClientConn(qc), pc: pc, peerID: hbone.PeerIdentity(cs.PeerCertificates[0])}, nil
}

func (p *Pool) packetConn(ctx context.Context, key hbone.Key) (net.PacketConn, error) {
	if p.cfg.PacketConn != nil {
		return p.cfg.PacketConn(ctx, key)
	}
	src := netip.IPv4Unspecified()
	if key.DstAddr.Addr().Is6() {
		src = netip.IPv6Unspecified()
	}
	if key.SrcIP.IsValid() {
		src = key.SrcIP
	}
	return net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
}

// drop forgets c if it is still key's connection, closing it.
func (p *Pool) drop(key hbone.Key, c *poolConn) {
	p.mu.Lock()
	if p.conns[key] == c {
		delete(p.conns, key)
	}
	p.mu.Unlock()
	_ = c.qc.CloseWithError(0, "")
	_ = c.pc.Close()
}

// retire takes c out of the pool without closing it: later dials for key
// make a new connection while c's open streams go on. c is closed when it
// ends by itself (its idle timeout, if its peer is gone) or with the pool.
func (p *Pool) retire(key hbone.Key, c *poolConn) {
	p.mu.Lock()
	if p.conns[key] != c || p.closed {
		p.mu.Unlock()
		return
	}
	delete(p.conns, key)
	p.retired[c] = struct{}{}
	p.mu.Unlock()
	p.log.Debug("hbone3 connection retired: no answer in time", "dst", key.DstAddr)
	go func() {
		<-c.qc.Context().Done()
		p.mu.Lock()
		delete(p.retired, c)
		p.mu.Unlock()
		_ = c.pc.Close()
	}()
}

// Close closes every connection (streams on them end) and makes later
// Dials fail with ErrClosed. It is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[hbone.Key]*poolConn{}
	retired := p.retired
	p.retired = map[*poolConn]struct{}{}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.qc.CloseWithError(0, "pool closed")
		_ = c.pc.Close()
	}
	for c := range retired {
		_ = c.qc.CloseWithError(0, "pool closed")
	}
	return nil
}

// Conns reports how many live connections the pool holds (not closed by
// either end), for tests and the admin endpoint.
func (p *Pool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.conns {
		if c.qc.Context().Err() == nil {
			n++
		}
	}
	return n
}
