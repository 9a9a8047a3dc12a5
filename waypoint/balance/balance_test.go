package balance

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func endpoints(n int) []netip.AddrPort {
	eps := make([]netip.AddrPort, n)
	for i := range eps {
		eps[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 8080)
	}
	return eps
}

func seeded(seed uint64) func(int) int { return rand.New(rand.NewPCG(seed, seed+1)).IntN }

// allKinds returns one balancer of each policy.
func allKinds(opts ...Option) map[string]Balancer {
	return map[string]Balancer{
		"peak-ewma":     NewPeakEWMA(opts...),
		"round-robin":   NewRoundRobin(opts...),
		"least-request": NewLeastRequest(opts...),
		"random":        NewRandom(opts...),
	}
}

func TestNewPicksPolicy(t *testing.T) {
	tests := []struct {
		lb   *l7api.LoadBalancer
		want Balancer
	}{
		{nil, &PeakEWMA{}},
		{&l7api.LoadBalancer{Policy: l7api.LoadBalancer_PEAK_EWMA}, &PeakEWMA{}},
		{&l7api.LoadBalancer{Policy: l7api.LoadBalancer_ROUND_ROBIN}, &RoundRobin{}},
		{&l7api.LoadBalancer{Policy: l7api.LoadBalancer_LEAST_REQUEST}, &LeastRequest{}},
		{&l7api.LoadBalancer{Policy: l7api.LoadBalancer_RANDOM}, &Random{}},
	}
	for _, tt := range tests {
		if got := New(tt.lb); reflect.TypeOf(got) != reflect.TypeOf(tt.want) {
			t.Errorf("New(%v) = %T, want %T", tt.lb, got, tt.want)
		}
	}
}

func TestEmptyAndSingle(t *testing.T) {
	one := endpoints(1)
	for name, b := range allKinds(WithSkip(func(netip.AddrPort) bool { return true })) {
		t.Run(name, func(t *testing.T) {
			ep, done := b.Pick(nil)
			if ep.IsValid() {
				t.Errorf("Pick(nil) = %v, want the zero AddrPort", ep)
			}
			done(time.Millisecond, nil)
			// A single endpoint is picked even when skipped (panic mode).
			ep, done = b.Pick(one)
			if ep != one[0] {
				t.Errorf("Pick(one) = %v, want %v", ep, one[0])
			}
			done(time.Millisecond, nil)
		})
	}
}

func TestSkipAvoidsEjected(t *testing.T) {
	eps := endpoints(10)
	ejected := map[netip.AddrPort]bool{eps[0]: true, eps[3]: true, eps[4]: true, eps[9]: true}
	skip := func(ep netip.AddrPort) bool { return ejected[ep] }
	for name, b := range allKinds(WithSkip(skip), WithRand(seeded(7)), WithClock(newFakeClock().Now)) {
		t.Run(name, func(t *testing.T) {
			seen := map[netip.AddrPort]int{}
			for range 3000 {
				ep, done := b.Pick(eps)
				seen[ep]++
				done(time.Millisecond, nil)
			}
			for ep := range ejected {
				if seen[ep] > 0 {
					t.Errorf("ejected %v picked %d times", ep, seen[ep])
				}
			}
			if len(seen) != 6 {
				t.Errorf("picked %d distinct endpoints, want all 6 eligible: %v", len(seen), seen)
			}
		})
	}
}

func TestAllSkippedFallsBackToAll(t *testing.T) {
	eps := endpoints(3)
	for name, b := range allKinds(WithSkip(func(netip.AddrPort) bool { return true }), WithRand(seeded(3))) {
		t.Run(name, func(t *testing.T) {
			seen := map[netip.AddrPort]bool{}
			for range 300 {
				ep, done := b.Pick(eps)
				seen[ep] = true
				done(time.Millisecond, nil)
			}
			if len(seen) != 3 {
				t.Errorf("panic mode picked %d distinct endpoints, want 3", len(seen))
			}
		})
	}
}

func TestRoundRobin(t *testing.T) {
	eps := endpoints(4)
	skipped := eps[2]
	b := NewRoundRobin(WithSkip(func(ep netip.AddrPort) bool { return ep == skipped }))
	var got []netip.AddrPort
	for range 6 {
		ep, _ := b.Pick(eps)
		got = append(got, ep)
	}
	want := []netip.AddrPort{eps[0], eps[1], eps[3], eps[0], eps[1], eps[3]}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestRandomIsUniform(t *testing.T) {
	eps := endpoints(4)
	b := NewRandom(WithRand(seeded(11)))
	counts := map[netip.AddrPort]int{}
	const n = 40000
	for range n {
		ep, _ := b.Pick(eps)
		counts[ep]++
	}
	for ep, c := range counts {
		if share := float64(c) / n; math.Abs(share-0.25) > 0.02 {
			t.Errorf("%v got %.3f of picks, want 0.25±0.02", ep, share)
		}
	}
}

func TestLeastRequestPrefersFewerPending(t *testing.T) {
	eps := endpoints(2)
	b := NewLeastRequest(WithRand(seeded(5)))
	// Hold requests open: the two endpoints must alternate.
	var dones []Done
	counts := map[netip.AddrPort]int{}
	for range 10 {
		ep, done := b.Pick(eps)
		counts[ep]++
		dones = append(dones, done)
	}
	if counts[eps[0]] != 5 || counts[eps[1]] != 5 {
		t.Errorf("picks with requests held open = %v, want 5 each", counts)
	}
	for _, d := range dones {
		d(0, nil)
	}
	if s := (*b.eps.m.Load())[eps[0]]; s.pending.Load() != 0 {
		t.Errorf("pending = %d after all Done, want 0", s.pending.Load())
	}
}

func TestPeakEWMAEstimate(t *testing.T) {
	clk := newFakeClock()
	b := NewPeakEWMA(WithClock(clk.Now), WithDecay(10*time.Second), WithDefaultRTT(10*time.Millisecond))
	eps := endpoints(1)
	near := func(got, want time.Duration) bool { return math.Abs(float64(got-want)) < float64(100*time.Microsecond) }

	_, done := b.Pick(eps)
	if rtt, pending, _ := b.Estimate(eps[0]); rtt != 10*time.Millisecond || pending != 1 {
		t.Fatalf("initial estimate %v, pending %d; want the default 10ms, 1", rtt, pending)
	}
	done(100*time.Millisecond, nil)
	if rtt, _, _ := b.Estimate(eps[0]); rtt != 100*time.Millisecond {
		t.Fatalf("after a 100ms peak the estimate is %v, want 100ms at once", rtt)
	}
	clk.Advance(time.Second)
	_, done = b.Pick(eps)
	done(10*time.Millisecond, nil)
	// 100ms·e^(-0.1) + 10ms·(1-e^(-0.1)) = 91.4ms
	want := time.Duration(100e6*math.Exp(-0.1) + 10e6*(1-math.Exp(-0.1)))
	if rtt, _, _ := b.Estimate(eps[0]); !near(rtt, want) {
		t.Fatalf("after a 10ms sample 1s later the estimate is %v, want %v", rtt, want)
	}
	clk.Advance(10 * time.Second)
	if rtt, _, _ := b.Estimate(eps[0]); !near(rtt, time.Duration(float64(want)*math.Exp(-1))) {
		t.Errorf("after 10s idle the estimate is %v, want %v (decayed by 1/e)", rtt, time.Duration(float64(want)*math.Exp(-1)))
	}
	// A failure is recorded as at least FailurePenalty.
	_, done = b.Pick(eps)
	done(time.Millisecond, errors.New("connection refused"))
	if rtt, _, _ := b.Estimate(eps[0]); rtt != FailurePenalty {
		t.Errorf("after a fast failure the estimate is %v, want %v", rtt, FailurePenalty)
	}
	if _, _, ok := b.Estimate(endpoints(2)[1]); ok {
		t.Error("Estimate of an unknown endpoint reported ok")
	}
}

func TestPeakEWMAPendingRaisesCost(t *testing.T) {
	clk := newFakeClock()
	b := NewPeakEWMA(WithClock(clk.Now), WithRand(seeded(1)))
	eps := endpoints(2)
	// Equal estimates: held requests push picks to the other endpoint.
	counts := map[netip.AddrPort]int{}
	for range 10 {
		ep, _ := b.Pick(eps)
		counts[ep]++
	}
	if counts[eps[0]] != 5 || counts[eps[1]] != 5 {
		t.Errorf("picks with requests held open = %v, want 5 each", counts)
	}
}

func TestPeakEWMAPrefersFastEndpoint(t *testing.T) {
	clk := newFakeClock()
	b := NewPeakEWMA(WithClock(clk.Now), WithRand(seeded(2)))
	eps := endpoints(2)
	latency := map[netip.AddrPort]time.Duration{eps[0]: 5 * time.Millisecond, eps[1]: 50 * time.Millisecond}
	counts := map[netip.AddrPort]int{}
	// 40 s: long enough for the slow endpoint's 50ms estimate to decay
	// below the fast one's (τ·ln 10 ≈ 23 s) and be probed again.
	for i := range 40000 {
		clk.Advance(time.Millisecond)
		ep, done := b.Pick(eps)
		done(latency[ep], nil)
		if i >= 100 {
			counts[ep]++
		}
	}
	share := float64(counts[eps[0]]) / 39900
	t.Logf("fast endpoint got %.1f%% of requests", 100*share)
	if share < 0.95 {
		t.Errorf("fast endpoint got %.1f%%, want ≥ 95%%", 100*share)
	}
	if counts[eps[1]] == 0 {
		t.Error("slow endpoint never probed again as its estimate decayed")
	}
}

// simulate sends a request every millisecond for 20 s to endpoints with
// the given latencies, completing each after its endpoint's latency, and
// returns the share of requests each endpoint got and the mean latency.
func simulate(b Balancer, clk *fakeClock, latencies []time.Duration) (shares []float64, mean time.Duration) {
	eps := endpoints(len(latencies))
	index := map[netip.AddrPort]int{}
	for i, ep := range eps {
		index[ep] = i
	}
	type inflight struct {
		at   int
		rtt  time.Duration
		done Done
	}
	var pending []inflight
	counts := make([]int, len(eps))
	var total time.Duration
	const steps = 20000
	for now := range steps {
		clk.Advance(time.Millisecond)
		kept := pending[:0]
		for _, p := range pending {
			if p.at <= now {
				p.done(p.rtt, nil)
				continue
			}
			kept = append(kept, p)
		}
		pending = kept
		ep, done := b.Pick(eps)
		i := index[ep]
		counts[i]++
		rtt := latencies[i]
		total += rtt
		pending = append(pending, inflight{at: now + int(rtt/time.Millisecond), rtt: rtt, done: done})
	}
	for _, c := range counts {
		shares = append(shares, float64(c)/steps)
	}
	return shares, total / steps
}

// TestPeakEWMAUnderLoad: one fast and three slow endpoints under
// concurrent load. P2C sends the fast endpoint every request in which it
// is a candidate (half of them), and the mean latency is well below a
// random balancer's.
func TestPeakEWMAUnderLoad(t *testing.T) {
	latencies := []time.Duration{5 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	clk := newFakeClock()
	shares, mean := simulate(NewPeakEWMA(WithClock(clk.Now), WithRand(seeded(9))), clk, latencies)
	rclk := newFakeClock()
	rshares, rmean := simulate(NewRandom(WithClock(rclk.Now), WithRand(seeded(9))), rclk, latencies)
	t.Logf("peak-EWMA: shares %.3f, mean %v; random: shares %.3f, mean %v", shares, mean, rshares, rmean)
	if shares[0] < 0.45 {
		t.Errorf("fast endpoint got %.1f%% with peak-EWMA, want ≥ 45%%", 100*shares[0])
	}
	if float64(mean) > 0.75*float64(rmean) {
		t.Errorf("peak-EWMA mean latency %v, want under 75%% of random's %v", mean, rmean)
	}
}

func TestStateFollowsEndpointSet(t *testing.T) {
	b := NewPeakEWMA()
	eps := endpoints(6)
	for range 100 {
		_, done := b.Pick(eps[:4])
		done(time.Millisecond, nil)
	}
	for range 100 {
		_, done := b.Pick(eps[2:])
		done(time.Millisecond, nil)
	}
	if got := b.eps.len(); got != 4 {
		t.Errorf("state held for %d endpoints, want the current 4", got)
	}
	if _, _, ok := b.Estimate(eps[0]); ok {
		t.Error("state of a removed endpoint kept")
	}
}

func TestConcurrentPickDone(t *testing.T) {
	eps := endpoints(8)
	skip := func(ep netip.AddrPort) bool { return ep == eps[3] }
	for name, b := range allKinds(WithSkip(skip)) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Go(func() {
					set := eps
					for i := range 2000 {
						if i%500 == 0 {
							set = eps[:len(eps)-g] // endpoint sets change under load
						}
						ep, done := b.Pick(set)
						if ep == eps[3] {
							t.Error("skipped endpoint picked")
						}
						done(time.Duration(i%7)*time.Millisecond, nil)
					}
				})
			}
			wg.Wait()
		})
	}
}
