package balance

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// baselineNs is the cost of the simplest balancer: one random index. The
// "baseline" sub-benchmark measures it first; the others report their
// cost as a multiple of it ("x-baseline").
var baselineNs float64

func reportBaseline(b *testing.B) {
	if baselineNs > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x-baseline")
	}
}

func BenchmarkPick(b *testing.B) {
	eps := endpoints(16)
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		var sink netip.AddrPort
		for b.Loop() {
			sink = eps[rand.IntN(len(eps))]
		}
		_ = sink
		baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	ejected := func(ep netip.AddrPort) bool { return ep == eps[5] }
	for _, kind := range []string{"peak-ewma", "least-request", "round-robin", "random"} {
		for _, withSkip := range []bool{false, true} {
			name := kind
			var opts []Option
			if withSkip {
				name += "-skip"
				opts = append(opts, WithSkip(ejected))
			}
			b.Run(name, func(b *testing.B) {
				bal := allKinds(opts...)[kind]
				b.ReportAllocs()
				for b.Loop() {
					_, done := bal.Pick(eps)
					done(time.Millisecond, nil)
				}
				reportBaseline(b)
			})
		}
	}
	b.Run("peak-ewma-parallel", func(b *testing.B) {
		bal := NewPeakEWMA()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_, done := bal.Pick(eps)
				done(time.Millisecond, nil)
			}
		})
		reportBaseline(b)
	})
}
