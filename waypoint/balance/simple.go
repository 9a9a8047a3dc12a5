package balance

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// RoundRobin picks eligible endpoints in turn. It is safe for concurrent
// use.
type RoundRobin struct {
	o    options
	next atomic.Uint64
}

// LeastRequest picks, of two distinct random eligible endpoints, the one
// with fewer requests pending (Envoy's least-request with choice 2). It is
// safe for concurrent use.
type LeastRequest struct {
	o   options
	eps *table[lrState]
}

type lrState struct {
	pending atomic.Int64
	done    Done
}

// Random picks a uniformly random eligible endpoint. It is safe for
// concurrent use.
type Random struct{ o options }

var (
	_ Balancer = (*RoundRobin)(nil)
	_ Balancer = (*LeastRequest)(nil)
	_ Balancer = (*Random)(nil)
)

// NewRoundRobin returns a round-robin balancer.
func NewRoundRobin(opts ...Option) *RoundRobin {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return &RoundRobin{o: o}
}

// NewLeastRequest returns a least-request balancer.
func NewLeastRequest(opts ...Option) *LeastRequest {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return &LeastRequest{o: o, eps: newTable(func(netip.AddrPort) *lrState {
		s := &lrState{}
		s.done = func(time.Duration, error) { s.pending.Add(-1) }
		return s
	})}
}

// NewRandom returns a random balancer.
func NewRandom(opts ...Option) *Random {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return &Random{o: o}
}

// Pick implements Balancer. The returned Done is a no-op.
func (b *RoundRobin) Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done) {
	n := uint64(len(endpoints))
	if n == 0 {
		return netip.AddrPort{}, noopDone
	}
	start := b.next.Add(1) - 1
	for k := range n {
		if ep := endpoints[(start+k)%n]; b.o.eligible(ep) {
			if k > 0 {
				// Move the cursor past the skipped run so that the next
				// pick does not repeat this one.
				b.next.Add(k)
			}
			return ep, noopDone
		}
	}
	return endpoints[start%n], noopDone // panic mode
}

// Pick implements Balancer.
func (b *LeastRequest) Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done) {
	if len(endpoints) == 0 {
		return netip.AddrPort{}, noopDone
	}
	i, j := b.o.chooseTwo(endpoints)
	pick, ep := b.eps.get(endpoints[i], endpoints), endpoints[i]
	if j >= 0 {
		if other := b.eps.get(endpoints[j], endpoints); other.pending.Load() < pick.pending.Load() {
			pick, ep = other, endpoints[j]
		}
	}
	pick.pending.Add(1)
	return ep, pick.done
}

// Pick implements Balancer. The returned Done is a no-op.
func (b *Random) Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done) {
	if len(endpoints) == 0 {
		return netip.AddrPort{}, noopDone
	}
	return endpoints[b.o.chooseOne(endpoints)], noopDone
}
