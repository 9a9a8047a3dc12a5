package ratelimit

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// baselineNs is the cost of the least a keyed limiter must do: read the
// clock and look a key up in a map under a mutex. It is measured by the
// "baseline" sub-benchmark, which runs first; the others report their
// cost as a multiple of it ("x-baseline").
var baselineNs float64

func benchBaseline(b *testing.B) {
	var mu sync.Mutex
	m := map[string]int{"spiffe://cluster.local/ns/demo/sa/client": 1}
	b.ReportAllocs()
	for b.Loop() {
		mu.Lock()
		_ = time.Now()
		m["spiffe://cluster.local/ns/demo/sa/client"]++
		mu.Unlock()
	}
	baselineNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

func reportBaseline(b *testing.B) {
	if baselineNs > 0 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/baselineNs, "x-baseline")
	}
}

func BenchmarkAllow(b *testing.B) {
	b.Run("baseline", benchBaseline)
	b.Run("route", func(b *testing.B) {
		l := mustNew(b, rateLimit(l7api.RateLimit_ROUTE, 1<<30, 1, time.Second))
		b.ReportAllocs()
		for b.Loop() {
			l.Allow("")
		}
		reportBaseline(b)
	})
	b.Run("source-hot-key", func(b *testing.B) {
		l := mustNew(b, rateLimit(l7api.RateLimit_SOURCE, 1<<30, 1, time.Second))
		b.ReportAllocs()
		for b.Loop() {
			l.Allow("spiffe://cluster.local/ns/demo/sa/client")
		}
		reportBaseline(b)
	})
	b.Run("source-1k-keys", func(b *testing.B) {
		l := mustNew(b, rateLimit(l7api.RateLimit_SOURCE, 1<<30, 1, time.Second))
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = "spiffe://cluster.local/ns/demo/sa/client-" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(keys[i%len(keys)])
			i++
		}
		reportBaseline(b)
	})
	b.Run("source-flood-evicting", func(b *testing.B) {
		l := mustNew(b, rateLimit(l7api.RateLimit_SOURCE, 1<<30, 1, time.Second), WithMaxKeys(1000))
		keys := make([]string, 4096)
		for i := range keys {
			keys[i] = "spiffe://cluster.local/ns/demo/sa/flood-" + strconv.Itoa(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			l.Allow(keys[i%len(keys)])
			i++
		}
		reportBaseline(b)
	})
	b.Run("route-parallel", func(b *testing.B) {
		l := mustNew(b, rateLimit(l7api.RateLimit_ROUTE, 1<<30, 1, time.Second))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow("")
			}
		})
		reportBaseline(b)
	})
}
