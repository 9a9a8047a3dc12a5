package balance

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// PeakEWMA is the peak-EWMA power-of-two-choices balancer. It is safe for
// concurrent use.
type PeakEWMA struct {
	o     options
	tauNs float64
	eps   *table[ewmaState]
}

var _ Balancer = (*PeakEWMA)(nil)

// ewmaState is one endpoint's latency estimate and load.
type ewmaState struct {
	pending atomic.Int64
	// costBits (a float64, nanoseconds) and stamp (Unix nanoseconds) are
	// written under mu and read without it by Pick; a torn pair only
	// skews one comparison.
	costBits atomic.Uint64
	stamp    atomic.Int64
	mu       sync.Mutex
	done     Done
}

// NewPeakEWMA returns a peak-EWMA power-of-two-choices balancer.
func NewPeakEWMA(opts ...Option) *PeakEWMA {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	b := &PeakEWMA{o: o, tauNs: float64(o.decay)}
	b.eps = newTable(func(netip.AddrPort) *ewmaState {
		s := &ewmaState{}
		s.costBits.Store(math.Float64bits(float64(b.o.defRTT)))
		s.stamp.Store(b.o.now().UnixNano())
		s.done = func(rtt time.Duration, err error) { b.observe(s, rtt, err) }
		return s
	})
	return b
}

// Pick implements Balancer: of two distinct random eligible endpoints it
// returns the one with the lower cost, where cost is the latency estimate
// decayed to now × (pending requests + 1). It does not allocate once the
// endpoints are known.
func (b *PeakEWMA) Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done) {
	if len(endpoints) == 0 {
		return netip.AddrPort{}, noopDone
	}
	i, j := b.o.chooseTwo(endpoints)
	pick := b.eps.get(endpoints[i], endpoints)
	ep := endpoints[i]
	if j >= 0 {
		now := b.o.now().UnixNano()
		other := b.eps.get(endpoints[j], endpoints)
		if b.load(other, now) < b.load(pick, now) {
			pick, ep = other, endpoints[j]
		}
	}
	pick.pending.Add(1)
	return ep, pick.done
}

// load is s's cost at now: the decayed latency estimate × (pending + 1).
func (b *PeakEWMA) load(s *ewmaState, now int64) float64 {
	cost := b.decayed(s, now)
	return max(cost, 1) * float64(s.pending.Load()+1)
}

// decayed is s's latency estimate decayed towards zero since its last
// observation, so that an endpoint slow long ago is tried again.
func (b *PeakEWMA) decayed(s *ewmaState, now int64) float64 {
	cost := math.Float64frombits(s.costBits.Load())
	if td := now - s.stamp.Load(); td > 0 {
		cost *= math.Exp(-float64(td) / b.tauNs)
	}
	return cost
}

// observe records a finished request: the estimate jumps to a new peak at
// once and otherwise moves towards rtt with weight 1-e^(-Δt/τ).
func (b *PeakEWMA) observe(s *ewmaState, rtt time.Duration, err error) {
	s.pending.Add(-1)
	if err != nil {
		rtt = max(rtt, FailurePenalty)
	}
	sample := float64(max(rtt, 0))
	now := b.o.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	cost := math.Float64frombits(s.costBits.Load())
	td := max(now-s.stamp.Load(), 0)
	if sample > cost {
		cost = sample
	} else {
		w := math.Exp(-float64(td) / b.tauNs)
		cost = cost*w + sample*(1-w)
	}
	s.costBits.Store(math.Float64bits(cost))
	s.stamp.Store(now)
}

// Estimate returns ep's latency estimate decayed to now and its pending
// requests, for metrics and tests; ok is false for an endpoint never
// picked.
func (b *PeakEWMA) Estimate(ep netip.AddrPort) (rtt time.Duration, pending int64, ok bool) {
	s := (*b.eps.m.Load())[ep]
	if s == nil {
		return 0, 0, false
	}
	return time.Duration(b.decayed(s, b.o.now().UnixNano())), s.pending.Load(), true
}
