package balance

import "net/netip"

// PeakEWMA is the peak-EWMA power-of-two-choices balancer.
type PeakEWMA struct {
	o options
	// TODO(WP-RESIL): per-endpoint state.
}

var _ Balancer = (*PeakEWMA)(nil)

// NewPeakEWMA returns a peak-EWMA power-of-two-choices balancer.
func NewPeakEWMA(opts ...Option) *PeakEWMA {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return &PeakEWMA{o: o}
}

// Pick implements Balancer: of two distinct random eligible endpoints it
// returns the one with the lower cost, where cost is the decayed latency
// estimate × (pending requests + 1).
func (b *PeakEWMA) Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done) {
	// TODO(WP-RESIL): implement.
	return netip.AddrPort{}, noopDone
}
