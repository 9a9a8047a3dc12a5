package fault

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// seq returns a Rand that yields values in turn.
func seq(values ...float64) Rand {
	i := 0
	return func() float64 {
		v := values[i%len(values)]
		i++
		return v
	}
}

func TestDecide(t *testing.T) {
	delay := durationpb.New(2 * time.Second)
	tests := []struct {
		name      string
		f         *l7api.FaultInjection
		rnd       Rand
		wantDelay time.Duration
		wantAbort int
	}{
		{name: "nil", f: nil},
		{name: "empty", f: &l7api.FaultInjection{}, rnd: seq(0)},
		{name: "always delay", f: &l7api.FaultInjection{Delay: delay, DelayPercent: 100}, rnd: seq(0.999), wantDelay: 2 * time.Second},
		{name: "always abort", f: &l7api.FaultInjection{AbortStatus: 503, AbortPercent: 100}, rnd: seq(0.999), wantAbort: 503},
		{name: "draw below percent hits", f: &l7api.FaultInjection{AbortStatus: 500, AbortPercent: 30}, rnd: seq(0.29), wantAbort: 500},
		{name: "draw at percent misses", f: &l7api.FaultInjection{AbortStatus: 500, AbortPercent: 30}, rnd: seq(0.30)},
		{name: "both, independent draws", f: &l7api.FaultInjection{Delay: delay, DelayPercent: 50, AbortStatus: 429, AbortPercent: 50}, rnd: seq(0.1, 0.9), wantDelay: 2 * time.Second},
		{name: "both hit", f: &l7api.FaultInjection{Delay: delay, DelayPercent: 50, AbortStatus: 429, AbortPercent: 50}, rnd: seq(0.1, 0.1), wantDelay: 2 * time.Second, wantAbort: 429},
		{name: "over 100 counts as 100", f: &l7api.FaultInjection{AbortStatus: 503, AbortPercent: 250}, rnd: seq(0.999), wantAbort: 503},
		{name: "NaN percent", f: &l7api.FaultInjection{AbortStatus: 503, AbortPercent: math.NaN()}, rnd: seq(0)},
		{name: "negative percent", f: &l7api.FaultInjection{Delay: delay, DelayPercent: -5}, rnd: seq(0)},
		{name: "zero delay", f: &l7api.FaultInjection{Delay: durationpb.New(0), DelayPercent: 100}, rnd: seq(0)},
		{name: "abort status 0", f: &l7api.FaultInjection{AbortPercent: 100}, rnd: seq(0)},
		{name: "abort status out of range", f: &l7api.FaultInjection{AbortStatus: 600, AbortPercent: 100}, rnd: seq(0)},
		{name: "default source", f: &l7api.FaultInjection{Delay: delay, DelayPercent: 100, AbortStatus: 503, AbortPercent: 100}, wantDelay: 2 * time.Second, wantAbort: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, a := Decide(tt.f, tt.rnd)
			if d != tt.wantDelay || a != tt.wantAbort {
				t.Errorf("Decide = (%v, %d), want (%v, %d)", d, a, tt.wantDelay, tt.wantAbort)
			}
		})
	}
}

// TestDecideRates checks the injected fractions over 10,000 decisions with
// a seeded source: each within ±2 points of its percentage.
func TestDecideRates(t *testing.T) {
	for _, pct := range []float64{0.5, 10, 50, 90} {
		r := rand.New(rand.NewPCG(1, uint64(pct*10)))
		f := &l7api.FaultInjection{Delay: durationpb.New(time.Second), DelayPercent: pct, AbortStatus: 503, AbortPercent: 100 - pct}
		const n = 10000
		delays, aborts := 0, 0
		for range n {
			d, a := Decide(f, r.Float64)
			if d > 0 {
				delays++
			}
			if a != 0 {
				aborts++
			}
		}
		gotDelay, gotAbort := 100*float64(delays)/n, 100*float64(aborts)/n
		t.Logf("delay %.1f%%: got %.2f%%; abort %.1f%%: got %.2f%%", pct, gotDelay, 100-pct, gotAbort)
		if math.Abs(gotDelay-pct) > 2 || math.Abs(gotAbort-(100-pct)) > 2 {
			t.Errorf("rates off by more than 2 points: delay %.2f%% (want %.1f), abort %.2f%% (want %.1f)", gotDelay, pct, gotAbort, 100-pct)
		}
	}
}

func BenchmarkDecide(b *testing.B) {
	f := &l7api.FaultInjection{Delay: durationpb.New(time.Second), DelayPercent: 50, AbortStatus: 503, AbortPercent: 50}
	var baselineNs float64
	b.Run("baseline", func(b *testing.B) { // two draws from the default source
		b.ReportAllocs()
		for b.Loop() {
			_ = rand.Float64() < 0.5
			_ = rand.Float64() < 0.5
		}
		baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("Decide", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Decide(f, nil)
		}
		if baselineNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x-baseline")
		}
	})
}
