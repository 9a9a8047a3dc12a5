package breaker

import (
	"context"
	"sync"
	"testing"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// baselineNs is the cost of an uncontended mutex lock and unlock, the
// least a shared limit costs. The "baseline" sub-benchmark measures it
// first; the others report their cost as a multiple of it ("x-baseline").
var baselineNs float64

func benchBaseline(b *testing.B) {
	var mu sync.Mutex
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		n++
		mu.Unlock()
	}
	baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

func reportBaseline(b *testing.B) {
	if baselineNs > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x-baseline")
	}
}

func BenchmarkBreaker(b *testing.B) {
	b.Run("baseline", benchBaseline)
	ctx := context.Background()
	b.Run("Acquire-release", func(b *testing.B) {
		p := NewPool(&l7api.ConnectionPool{MaxConnections: 100, MaxPendingRequests: 100, MaxRequests: 1000}, WithOneRequestPerConnection())
		b.ReportAllocs()
		for b.Loop() {
			release, err := p.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
		reportBaseline(b)
	})
	b.Run("Acquire-release-parallel", func(b *testing.B) {
		p := NewPool(&l7api.ConnectionPool{MaxRequests: 1 << 20})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				release, err := p.Acquire(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				release()
			}
		})
		reportBaseline(b)
	})
	b.Run("Acquire-overflow", func(b *testing.B) {
		p := NewPool(&l7api.ConnectionPool{MaxRequests: 1})
		if _, err := p.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Acquire(ctx); err == nil {
				b.Fatal("no overflow")
			}
		}
		reportBaseline(b)
	})
	eps := endpoints(16)
	o := NewOutliers(&l7api.OutlierDetection{Consecutive_5XxErrors: 5})
	o.SetEndpoints(eps)
	for _, ep := range eps {
		o.Report(ep, 500, nil) // give every endpoint state
	}
	b.Run("Report", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			o.Report(eps[i%len(eps)], 200, nil)
			i++
		}
		reportBaseline(b)
	})
	b.Run("Ejected", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			o.Ejected(eps[i%len(eps)])
			i++
		}
		reportBaseline(b)
	})
}
