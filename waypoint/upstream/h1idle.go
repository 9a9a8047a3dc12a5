package upstream

import (
	"net/netip"
	"sync"
	"time"
)

// idlePool keeps H1's kept-alive connections per endpoint, most recently
// used first, for at most timeout each; a timer sweeps out the expired
// ones while any are kept. It is safe for concurrent use.
type idlePool struct {
	timeout time.Duration
	perHost int

	mu     sync.Mutex
	conns  map[netip.AddrPort][]*h1Conn
	sweep  *time.Timer
	closed bool
}

func newIdlePool(timeout time.Duration, perHost int) *idlePool {
	return &idlePool{timeout: timeout, perHost: perHost, conns: map[netip.AddrPort][]*h1Conn{}}
}

// get returns an idle connection to ep that still looks usable, closing
// the ones that do not; nil if there is none.
func (p *idlePool) get(ep netip.AddrPort) *h1Conn {
	now := time.Now()
	for {
		p.mu.Lock()
		cs := p.conns[ep]
		if len(cs) == 0 {
			p.mu.Unlock()
			return nil
		}
		c := cs[len(cs)-1]
		cs[len(cs)-1] = nil
		if cs = cs[:len(cs)-1]; len(cs) == 0 {
			delete(p.conns, ep)
		} else {
			p.conns[ep] = cs
		}
		p.mu.Unlock()
		if now.Sub(c.idleSince) < p.timeout && c.alive() {
			c.reused = true
			return c
		}
		c.close()
	}
}

// put keeps c for reuse, or closes it when ep has enough idle
// connections or the pool is closed.
func (p *idlePool) put(ep netip.AddrPort, c *h1Conn) {
	c.idleSince = time.Now()
	p.mu.Lock()
	if p.closed || len(p.conns[ep]) >= p.perHost {
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[ep] = append(p.conns[ep], c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(p.timeout, p.expire)
	}
	p.mu.Unlock()
}

// expire closes the connections idle for longer than the timeout and
// schedules the next sweep while any are left.
func (p *idlePool) expire() {
	now := time.Now()
	var old []*h1Conn
	p.mu.Lock()
	for ep, cs := range p.conns {
		keep := cs[:0]
		for _, c := range cs {
			if now.Sub(c.idleSince) >= p.timeout {
				old = append(old, c)
			} else {
				keep = append(keep, c)
			}
		}
		clear(cs[len(keep):])
		if len(keep) == 0 {
			delete(p.conns, ep)
		} else {
			p.conns[ep] = keep
		}
	}
	p.sweep = nil
	if len(p.conns) > 0 && !p.closed {
		p.sweep = time.AfterFunc(p.timeout/2, p.expire)
	}
	p.mu.Unlock()
	for _, c := range old {
		c.close()
	}
}

// close closes every idle connection; after a final close, connections
// put back are closed too. It is idempotent.
func (p *idlePool) close(final bool) {
	p.mu.Lock()
	p.closed = p.closed || final
	conns := p.conns
	p.conns = map[netip.AddrPort][]*h1Conn{}
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, cs := range conns {
		for _, c := range cs {
			c.close()
		}
	}
}
