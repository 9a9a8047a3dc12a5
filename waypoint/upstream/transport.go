package upstream

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/weftmesh/weft/waypoint/retry"
)

// ConnLimiter limits the connections opened to one backend;
// breaker.Pool implements it. Implementations must be comparable (a
// pointer).
type ConnLimiter interface {
	AcquireConn() (release func(), err error)
}

// endpointConns counts the open connections to each endpoint by limiter.
// As Envoy does, an endpoint the load balancer chose may always have one
// connection: one with none is dialed even when the limiter's
// max_connections are taken (by connections to other endpoints, idle or
// not), so an idle connection to one endpoint never keeps another from
// being reached. A second connection to an endpoint needs a slot.
type endpointConns struct {
	mu sync.Mutex
	n  map[endpointKey]int
}

type endpointKey struct {
	l  ConnLimiter
	ep netip.AddrPort
}

// acquire takes a connection to ep under l; release must be called once
// when the connection closes.
func (c *endpointConns) acquire(l ConnLimiter, ep netip.AddrPort) (release func(), err error) {
	key := endpointKey{l, ep}
	slot, err := l.AcquireConn()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil && c.n[key] > 0 {
		return nil, err
	}
	c.n[key]++
	return func() {
		if slot != nil {
			slot()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.n[key]--; c.n[key] <= 0 {
			delete(c.n, key)
		}
	}, nil
}

type limiterKey struct{}

// WithConnLimiter returns ctx asking the transports to take a connection
// slot from l for any connection they open for the request.
func WithConnLimiter(ctx context.Context, l ConnLimiter) context.Context {
	return context.WithValue(ctx, limiterKey{}, l)
}

// Transports are the HTTP round trippers over a Dialer: HTTP/1.1 with
// keep-alive connections, each an HBONE stream, and HTTP/2 with prior
// knowledge (h2c) inside the tunnel. Connections are per endpoint address.
type Transports struct {
	HTTP1 *H1
	HTTP2 *Transport
}

// Transport is an *http.Transport whose RoundTrip errors are marked for
// retry classification: a failure to connect (or a connection limit
// reached) is returned as the dial step gave it, with a connect failure
// marked by retry.ConnectFailure; a connection or stream that broke
// before the response headers arrived is marked with retry.Reset; errors
// of a request whose context ended are returned as they are.
type Transport struct {
	*http.Transport
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.Transport.RoundTrip(r)
	if err != nil {
		return nil, markReset(r.Context(), err)
	}
	return resp, nil
}

// markReset marks err, a RoundTrip error, as a reset unless it came from
// dialing or from the request's context.
func markReset(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, errDial) || errors.Is(err, retry.ErrReset) {
		return err
	}
	return retry.Reset(err)
}

// errDial marks the errors of the transports' dial step.
var errDial = errors.New("dial step")

// dialError is an error of the dial step; errors.Is(err, errDial) holds.
type dialError struct{ err error }

func (e dialError) Error() string        { return e.err.Error() }
func (e dialError) Unwrap() error        { return e.err }
func (e dialError) Is(target error) bool { return target == errDial }

// NewTransports returns the transports over d. idle bounds how long an
// unused connection is kept.
func NewTransports(d *Dialer, idle time.Duration) *Transports {
	conns := &endpointConns{n: map[endpointKey]int{}}
	dialAP := func(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
		var release func()
		var err error
		if l, ok := ctx.Value(limiterKey{}).(ConnLimiter); ok && l != nil {
			if release, err = conns.acquire(l, ap); err != nil {
				return nil, dialError{err}
			}
		}
		c, err := d.Dial(ctx, ap, nil)
		if err != nil {
			if release != nil {
				release()
			}
			return nil, dialError{err}
		}
		if release != nil {
			c = &releasingConn{Conn: c, release: release}
		}
		return c, nil
	}
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, dialError{err}
		}
		return dialAP(ctx, ap)
	}
	base := func() *http.Transport {
		return &http.Transport{
			DialContext: dial, DisableCompression: true, MaxIdleConns: 0, MaxIdleConnsPerHost: 256,
			IdleConnTimeout: idle, ExpectContinueTimeout: time.Second, Proxy: nil,
		}
	}
	h1, h2 := base(), base()
	h1.Protocols = new(http.Protocols)
	h1.Protocols.SetHTTP1(true)
	h2.Protocols = new(http.Protocols)
	h2.Protocols.SetUnencryptedHTTP2(true)
	h2.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 4 << 20, MaxReceiveBufferPerConnection: 16 << 20}
	return &Transports{
		HTTP1: &H1{Fallback: &Transport{h1}, dial: dialAP, idle: newIdlePool(idle, h1.MaxIdleConnsPerHost), smallBody: SmallBody},
		HTTP2: &Transport{h2},
	}
}

// Close closes idle connections of both transports; HTTP/1.1 connections
// that finish later are closed rather than kept.
func (t *Transports) Close() {
	t.HTTP1.idle.close(true)
	t.HTTP1.CloseIdleConnections()
	t.HTTP2.CloseIdleConnections()
}

// releasingConn gives its connection slot back when closed.
type releasingConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// NetConn returns the connection it wraps.
func (c *releasingConn) NetConn() net.Conn { return c.Conn }

func (c *releasingConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
