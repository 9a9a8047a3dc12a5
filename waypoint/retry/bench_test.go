package retry

import (
	"sync/atomic"
	"testing"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// baselineNs is the cost of one atomic add, the least a shared counter
// costs. The "baseline" sub-benchmark measures it first; the others report
// their cost as a multiple of it ("x-baseline").
var baselineNs float64

func benchBaseline(b *testing.B) {
	var n atomic.Int64
	b.ReportAllocs()
	for b.Loop() {
		n.Add(1)
	}
	baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

func reportBaseline(b *testing.B) {
	if baselineNs > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x-baseline")
	}
}

func BenchmarkRetry(b *testing.B) {
	b.Run("baseline", benchBaseline)
	p := mustPolicy(b, &l7api.RetryPolicy{Attempts: 2, RetryOn: []string{OnGatewayError, OnRetriableStatusCodes}, Codes: []uint32{429, 500}})
	b.Run("ShouldRetry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.ShouldRetry(1, 500, nil)
		}
		reportBaseline(b)
	})
	b.Run("Backoff", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p.Backoff(3)
		}
		reportBaseline(b)
	})
	b.Run("Budget-Begin-AllowRetry-RetryDone-End", func(b *testing.B) {
		bud := p.NewBudget()
		for range 100 {
			bud.Begin()
		}
		b.ReportAllocs()
		for b.Loop() {
			bud.Begin()
			if bud.AllowRetry() {
				bud.RetryDone()
			}
			bud.End()
		}
		reportBaseline(b)
	})
	b.Run("Budget-parallel", func(b *testing.B) {
		bud := p.NewBudget()
		for range 100 {
			bud.Begin()
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				bud.Begin()
				if bud.AllowRetry() {
					bud.RetryDone()
				}
				bud.End()
			}
		})
		reportBaseline(b)
	})
}
