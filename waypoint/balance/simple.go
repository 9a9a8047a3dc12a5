package balance

import "net/netip"

// RoundRobin picks eligible endpoints in turn.
type RoundRobin struct{ o options }

// LeastRequest picks, of two distinct random eligible endpoints, the one
// with fewer requests pending (Envoy's least-request with choice 2).
type LeastRequest struct{ o options }

// Random picks a uniformly random eligible endpoint.
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
	return &LeastRequest{o: o}
}

// NewRandom returns a random balancer.
func NewRandom(opts ...Option) *Random {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return &Random{o: o}
}

// Pick implements Balancer.
func (b *RoundRobin) Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done) {
	// TODO(WP-RESIL): implement.
	return netip.AddrPort{}, noopDone
}

// Pick implements Balancer.
func (b *LeastRequest) Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done) {
	// TODO(WP-RESIL): implement.
	return netip.AddrPort{}, noopDone
}

// Pick implements Balancer.
func (b *Random) Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done) {
	// TODO(WP-RESIL): implement.
	return netip.AddrPort{}, noopDone
}
