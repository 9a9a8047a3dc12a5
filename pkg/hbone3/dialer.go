package hbone3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/hbone"
)

// Tunnel is a CONNECT stream of either transport.
type Tunnel interface {
	net.Conn
	// CloseWrite sends the end of the stream; reading continues.
	CloseWrite() error
	// PeerIdentity is the verified SPIFFE identity of the other end.
	PeerIdentity() string
}

var (
	_ Tunnel = (*Stream)(nil)
	_ Tunnel = (*hbone.Stream)(nil)
)

// Transport names, as metrics and the config dump show them.
const (
	TransportH2   = "HBONE"
	TransportQUIC = "HBONE_QUIC"
)

// DefaultFallbackPeriod is how long a destination whose QUIC handshake
// failed is reached over HTTP/2 before QUIC is tried again.
const DefaultFallbackPeriod = time.Minute

// maxBlocked is the size at which expired fallback entries are swept.
const maxBlocked = 1024

// Dialer chooses the transport per destination: QUIC when the caller says
// the destination advertises it, HTTP/2 otherwise, and HTTP/2 for a while
// after a QUIC attempt to that address failed (UDP blocked on the path): a
// failed handshake, or no answer to the CONNECT within the QUIC pool's
// handshake timeout.
// A refusal by the server (a status answer) is never retried on the other
// transport: it is the destination's decision, not the path's.
type Dialer struct {
	// QUIC and H2 are the two pools; H2 is required, QUIC may be nil
	// (then every dial uses HTTP/2).
	QUIC *Pool
	H2   *hbone.Pool
	// FallbackPeriod defaults to DefaultFallbackPeriod.
	FallbackPeriod time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	blocked map[netip.AddrPort]time.Time // QUIC failed: until when to skip it
}

// Dial opens a tunnel to authority for key over the chosen transport and
// reports which one carried it.
func (d *Dialer) Dial(ctx context.Context, key hbone.Key, authority string, hdr http.Header, advertisesQUIC bool) (Tunnel, string, error) {
	if d.H2 == nil {
		return nil, "", errors.New("hbone dialer: H2 pool is required")
	}
	if advertisesQUIC && d.QUIC != nil && !d.isBlocked(key.DstAddr) {
		// The QUIC attempt (handshake or, on a pooled connection, the
		// answer to the CONNECT) gets at most the handshake timeout, so a
		// path that stopped carrying UDP leaves time to fall back.
		qctx, cancel := context.WithTimeout(ctx, d.QUIC.cfg.HandshakeTimeout)
		s, err := d.QUIC.Dial(qctx, key, authority, hdr)
		cancel()
		if err == nil {
			return s, TransportQUIC, nil
		}
		var status *hbone.StatusError
		if errors.As(err, &status) || ctx.Err() != nil {
			return nil, TransportQUIC, err
		}
		d.block(key.DstAddr)
		s2, err2 := d.H2.Dial(ctx, key, authority, hdr)
		if err2 != nil {
			return nil, TransportH2, fmt.Errorf("%w (after quic failed: %v)", err2, err)
		}
		return s2, TransportH2, nil
	}
	s, err := d.H2.Dial(ctx, key, authority, hdr)
	if err != nil {
		return nil, TransportH2, err
	}
	return s, TransportH2, nil
}

func (d *Dialer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dialer) isBlocked(a netip.AddrPort) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.blocked[a]
	if !ok {
		return false
	}
	if d.now().Before(until) {
		return true
	}
	delete(d.blocked, a)
	return false
}

func (d *Dialer) block(a netip.AddrPort) {
	period := d.FallbackPeriod
	if period <= 0 {
		period = DefaultFallbackPeriod
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.blocked == nil {
		d.blocked = map[netip.AddrPort]time.Time{}
	}
	now := d.now()
	if len(d.blocked) >= maxBlocked {
		for k, until := range d.blocked {
			if !now.Before(until) {
				delete(d.blocked, k)
			}
		}
	}
	d.blocked[a] = now.Add(period)
}
