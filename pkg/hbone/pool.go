package hbone

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Key identifies a pool of connections, as Istio's ztunnel keys them: only
// streams with equal keys share a connection. Build it with NewKey so the
// destination identities are in canonical order.
type Key struct {
	// SrcIdentity is the SPIFFE ID the client presents.
	SrcIdentity string
	// DstIdentities is the sorted, comma-separated list of SPIFFE IDs the
	// server may present.
	DstIdentities string
	// DstAddr is the address dialled (the workload's or waypoint's HBONE
	// port).
	DstAddr netip.AddrPort
	// SrcIP is the source address the connection is made from.
	SrcIP netip.Addr
}

// NewKey returns the Key for the given parts, sorting and de-duplicating
// dst.
func NewKey(src string, dst []string, addr netip.AddrPort, srcIP netip.Addr) Key {
	d := slices.Clone(dst)
	slices.Sort(d)
	d = slices.Compact(d)
	return Key{SrcIdentity: src, DstIdentities: strings.Join(d, ","), DstAddr: addr, SrcIP: srcIP}
}

// Identities returns the expected server identities of the key.
func (k Key) Identities() []string {
	if k.DstIdentities == "" {
		return nil
	}
	return strings.Split(k.DstIdentities, ",")
}

// ErrIdentityMismatch is returned (wrapped) when the server's certificate
// does not carry any identity the key expects.
var ErrIdentityMismatch = errors.New("hbone: server identity not expected")

// PoolConfig configures a Pool.
type PoolConfig struct {
	// TLSConfig returns the client TLS configuration for a key: the source
	// workload's certificate and verification of the server's chain
	// (identity.ClientConfig builds one). It must offer ALPN "h2". The pool
	// additionally requires the server leaf's SPIFFE URI SAN to be one of
	// Key.DstIdentities. Required.
	TLSConfig func(Key) (*tls.Config, error)
	// Dial opens the TCP connection for a key; nil dials Key.DstAddr with a
	// net.Dialer bound to Key.SrcIP when it is valid. It must honour ctx.
	Dial func(ctx context.Context, key Key) (net.Conn, error)
	// MaxStreamsPerConn caps streams per connection (default 100); the
	// server's MAX_CONCURRENT_STREAMS caps it further. A new connection is
	// dialled when every connection of the key is full; a burst of Dials
	// that needs several new connections dials them in parallel (one per
	// MaxStreamsPerConn waiting Dials, at most 32 per key at once).
	MaxStreamsPerConn int
	// IdleTimeout closes a connection that carried no stream for this long
	// (default 5 min).
	IdleTimeout time.Duration
	// Limits tunes each connection; IdleTimeout and MaxConcurrentStreams
	// in it are ignored.
	Limits Limits
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
}

// Pool dials HBONE connections and opens streams on them, sharing a
// connection among streams with the same Key. It is safe for concurrent
// use.
type Pool struct {
	cfg    PoolConfig
	lim    Limits
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	entries map[Key]*poolEntry
	closed  bool
}

type poolEntry struct {
	conns []*pooledConn
	dials []*dialCall // connection attempts in flight
}

type pooledConn struct {
	c      *conn
	active int
}

type dialCall struct {
	done chan struct{}
	pc   *pooledConn
	err  error
	// waiters counts the acquires waiting for this attempt (under p.mu).
	waiters int
}

// maxDialsPerKey bounds the connection attempts in flight for one key. A
// burst of streams needing many connections dials them in parallel up to
// this, so it waits for about one handshake rather than one per
// connection; beyond it, waiters share the attempts already in flight and
// retry when they end.
const maxDialsPerKey = 32

// NewPool returns a Pool. It starts no goroutine until the first Dial.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.TLSConfig == nil {
		return nil, errors.New("hbone: pool needs a TLSConfig")
	}
	if cfg.MaxStreamsPerConn <= 0 {
		cfg.MaxStreamsPerConn = DefaultPoolMaxStreams
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultPoolIdleTimeout
	}
	lim := cfg.Limits
	lim.IdleTimeout = cfg.IdleTimeout
	lim = lim.withDefaults(false)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{cfg: cfg, lim: lim, log: log, ctx: ctx, cancel: cancel, entries: make(map[Key]*poolEntry)}, nil
}

// Dial opens a CONNECT stream to authority ("host:port") over a pooled
// connection for key, sending hdr (forwarded, baggage, traceparent, ...)
// with the request, and waits for the 200. A non-200 answer is returned as
// a *StatusError. A stream refused before processing (GOAWAY,
// REFUSED_STREAM) or lost with its connection before an answer is retried
// on another connection, at most three times. ctx bounds the whole
// call, including a dial it has to wait for.
func (p *Pool) Dial(ctx context.Context, key Key, authority string, hdr http.Header) (*Stream, error) {
	if err := validAuthority(authority); err != nil {
		return nil, fmt.Errorf("hbone: dial: %w", err)
	}
	for k := range hdr {
		if !validFieldName(strings.ToLower(k)) {
			return nil, fmt.Errorf("hbone: dial: invalid header name %q", k)
		}
	}
	for attempt := 0; ; attempt++ {
		pc, err := p.acquire(ctx, key)
		if err != nil {
			return nil, err
		}
		s, err := p.open(ctx, pc, authority, hdr)
		if err == nil {
			return s, nil
		}
		// Refused streams were not processed; a connection that died
		// before answering (a peer restart) is retried too: CONNECT only
		// asks for a TCP connection, so asking again is safe.
		if (errors.Is(err, ErrRefused) || errors.Is(err, errConnClosed)) && attempt < 3 && ctx.Err() == nil {
			continue
		}
		return nil, fmt.Errorf("hbone: dial %s via %s: %w", authority, key.DstAddr, err)
	}
}

func (p *Pool) open(ctx context.Context, pc *pooledConn, authority string, hdr http.Header) (*Stream, error) {
	s := newStream(pc.c, 0)
	s.resp = make(chan response, 1)
	s.release = func() { p.release(pc) }
	if err := pc.c.writeRequest(s, authority, hdr); err != nil {
		p.release(pc)
		return nil, err
	}
	pc.c.needers.Add(1)
	defer pc.c.needers.Add(-1)
	pc.c.needReader()
	select {
	case r := <-s.resp:
		if r.err != nil {
			s.Abort()
			return nil, r.err
		}
		if r.status != http.StatusOK {
			s.Abort()
			return nil, &StatusError{Code: r.status}
		}
		return s, nil
	case <-ctx.Done():
		s.Abort()
		return nil, ctx.Err()
	}
}

func (p *Pool) release(pc *pooledConn) {
	p.mu.Lock()
	pc.active--
	p.mu.Unlock()
}

// acquire reserves a stream slot on a connection for key. When every
// connection is full it waits for a connection attempt, starting one for
// each MaxStreamsPerConn waiters (at most maxDialsPerKey in flight), so a
// burst of new streams is not served one handshake after another.
func (p *Pool) acquire(ctx context.Context, key Key) (*pooledConn, error) {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("hbone: pool closed")
		}
		e := p.entries[key]
		if e == nil {
			e = &poolEntry{}
			p.entries[key] = e
		}
		for _, pc := range e.conns {
			if pc.active < p.capacity(pc) {
				pc.active++
				p.mu.Unlock()
				return pc, nil
			}
		}
		call := p.joinDial(key, e)
		p.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			p.mu.Lock()
			call.waiters--
			p.mu.Unlock()
			return nil, fmt.Errorf("hbone: waiting for a connection to %s: %w", key.DstAddr, ctx.Err())
		}
		p.mu.Lock() // for capacity; the call left e.dials before done closed
		if call.err != nil {
			p.mu.Unlock()
			return nil, call.err
		}
		if p.capacity(call.pc) == 0 {
			p.mu.Unlock()
			return nil, fmt.Errorf("hbone: %s allows no streams on a new connection: %w", key.DstAddr, ErrRefused)
		}
	}
}

// joinDial counts the caller as waiting for a connection attempt of e:
// one in flight with room for it (each attempt is expected to carry
// MaxStreamsPerConn streams), a new one, or, at maxDialsPerKey, the one
// with the fewest waiters. Called with p.mu held.
func (p *Pool) joinDial(key Key, e *poolEntry) *dialCall {
	var best *dialCall
	for _, c := range e.dials {
		if best == nil || c.waiters < best.waiters {
			best = c
		}
	}
	if best == nil || (best.waiters >= p.cfg.MaxStreamsPerConn && len(e.dials) < maxDialsPerKey) {
		best = &dialCall{done: make(chan struct{})}
		e.dials = append(e.dials, best)
		go p.dial(key, e, best)
	}
	best.waiters++
	return best
}

// capacity returns how many streams pc may carry now (0 when it is going
// away). Called with p.mu held.
func (p *Pool) capacity(pc *pooledConn) int {
	c := pc.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.goAwayRecv || c.goAwaySent {
		return 0
	}
	return min(p.cfg.MaxStreamsPerConn, int(c.peerMaxStreams))
}

func (p *Pool) dial(key Key, e *poolEntry, call *dialCall) {
	start := time.Now()
	c, err := p.connect(key)
	p.mu.Lock()
	p.log.Debug("hbone connection dialled", "dst", key.DstAddr, "took", time.Since(start),
		"waiters", call.waiters, "in_flight", len(e.dials), "conns", len(e.conns), "err", err)
	e.dials = slices.DeleteFunc(e.dials, func(d *dialCall) bool { return d == call })
	if err == nil {
		if p.closed {
			err = errors.New("hbone: pool closed")
			defer c.fail(errConnClosed)
		} else {
			call.pc = &pooledConn{c: c}
			e.conns = append(e.conns, call.pc)
		}
	}
	call.err = err
	close(call.done)
	p.mu.Unlock()
}

// connect dials, handshakes, checks the server identity and exchanges
// SETTINGS.
func (p *Pool) connect(key Key) (*conn, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.lim.HandshakeTimeout)
	defer cancel()
	cfg, err := p.cfg.TLSConfig(key)
	if err != nil {
		return nil, fmt.Errorf("hbone: tls config for %s: %w", key.DstAddr, err)
	}
	dial := p.cfg.Dial
	if dial == nil {
		dial = dialKey
	}
	nc, err := dial(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("hbone: dial %s: %w", key.DstAddr, err)
	}
	tc := tls.Client(newCorkConn(nc), cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("hbone: tls handshake with %s: %w", key.DstAddr, err)
	}
	cs := tc.ConnectionState()
	if cs.NegotiatedProtocol != "h2" {
		_ = tc.Close()
		return nil, fmt.Errorf("hbone: %s negotiated ALPN %q, want h2", key.DstAddr, cs.NegotiatedProtocol)
	}
	if err := checkServerIdentity(cs, key); err != nil {
		_ = tc.Close()
		return nil, err
	}
	c := newConn(tc, p.lim, true, p.log)
	if len(cs.PeerCertificates) > 0 {
		c.peerID = PeerIdentity(cs.PeerCertificates[0])
	}
	c.onStreamDone = func(s *Stream) {
		if s.release != nil {
			s.release()
		}
	}
	c.onClose = func(c *conn) { p.forget(key, c) }
	if err := c.start(); err != nil {
		c.fail(err)
		return nil, err
	}
	select {
	case <-c.settingsCh:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("hbone: connection to %s closed before SETTINGS: %w", key.DstAddr, c.err)
	case <-ctx.Done():
		c.fail(ctx.Err())
		return nil, fmt.Errorf("hbone: waiting for SETTINGS from %s: %w", key.DstAddr, ctx.Err())
	}
}

func checkServerIdentity(cs tls.ConnectionState, key Key) error {
	want := key.Identities()
	if len(want) == 0 {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: no certificate", ErrIdentityMismatch)
	}
	got := PeerIdentity(cs.PeerCertificates[0])
	if got == "" || !slices.Contains(want, got) {
		return fmt.Errorf("%w: %s presented %q, want one of %v", ErrIdentityMismatch, key.DstAddr, got, want)
	}
	return nil
}

func dialKey(ctx context.Context, key Key) (net.Conn, error) {
	var d net.Dialer
	if key.SrcIP.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(key.SrcIP, 0))
	}
	return d.DialContext(ctx, "tcp", key.DstAddr.String())
}

func (p *Pool) forget(key Key, c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.entries[key]
	if e == nil {
		return
	}
	e.conns = slices.DeleteFunc(e.conns, func(pc *pooledConn) bool { return pc.c == c })
	if len(e.conns) == 0 && len(e.dials) == 0 {
		delete(p.entries, key)
	}
}

// Stats reports the pool's connections and streams per key, for tests and
// the admin endpoint.
func (p *Pool) Stats() map[Key]PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[Key]PoolStats, len(p.entries))
	for k, e := range p.entries {
		var st PoolStats
		for _, pc := range e.conns {
			st.Conns++
			st.Streams += pc.active
		}
		out[k] = st
	}
	return out
}

// PoolStats counts a key's connections and open streams.
type PoolStats struct {
	Conns, Streams int
}

// Close sends GOAWAY on every connection (open streams finish), stops
// dialling and makes later Dials fail. It is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	var conns []*conn
	for _, e := range p.entries {
		for _, pc := range e.conns {
			conns = append(conns, pc.c)
		}
	}
	p.mu.Unlock()
	p.cancel()
	for _, c := range conns {
		c.shutdown()
	}
	return nil
}
