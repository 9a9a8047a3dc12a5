package telemetry

import (
	"sync"
	"testing"
)

func seriesLabels() Labels {
	return Labels{
		Source: Peer{Workload: "client", Namespace: "demo", Principal: "spiffe://cluster.local/ns/demo/sa/client",
			App: "client", Version: "v1", CanonicalService: "client", CanonicalRevision: "v1", Cluster: "Kubernetes"},
		Destination: Peer{Workload: "server", Namespace: "demo", Principal: "spiffe://cluster.local/ns/demo/sa/server",
			App: "server", Version: "v1", CanonicalService: "server", CanonicalRevision: "v1", Cluster: "Kubernetes"},
		DestinationService: "server.demo.svc.cluster.local", DestinationServiceNamespace: "demo", DestinationServiceName: "server",
		RequestProtocol: "http",
	}
}

// TestSeriesCache checks that a label set keeps its series whether it is
// the last one looked up or not, and that different sets (or codes) never
// share one.
func TestSeriesCache(t *testing.T) {
	m := NewMetrics()
	a := seriesLabels()
	b := seriesLabels()
	b.Source.Workload = "other"
	sa := m.series(a, 200, "")
	sb := m.series(b, 200, "")
	s503 := m.series(a, 503, "")
	sgrpc := m.series(a, 200, "14")
	for i, s := range []*series{sb, s503, sgrpc} {
		if s == sa {
			t.Fatalf("series %d shares the first label set's series", i)
		}
	}
	// A copy of the labels (other string headers, same values) finds the
	// same series, as the last one looked up and otherwise.
	c := seriesLabels()
	if got := m.series(c, 200, ""); got != sa {
		t.Error("an equal label set got a new series (from the map)")
	}
	if got := m.series(c, 200, ""); got != sa {
		t.Error("an equal label set got a new series (the last one)")
	}
	if got := m.series(b, 200, ""); got != sb {
		t.Error("the second label set got a new series")
	}
	if n := testing.AllocsPerRun(100, func() { m.series(a, 200, "") }); n > 0 {
		t.Errorf("looking up a known series allocates %.0f times", n)
	}
}

// TestSeriesConcurrent looks series up from several goroutines (run with
// -race) and checks that each label set ends with one series.
func TestSeriesConcurrent(t *testing.T) {
	m := NewMetrics()
	var wg sync.WaitGroup
	got := make([][]*series, 4)
	for g := range got {
		wg.Go(func() {
			for i := range 200 {
				got[g] = append(got[g], m.series(seriesLabels(), 200+i%3, ""))
			}
		})
	}
	wg.Wait()
	for g := range got {
		for i, s := range got[g] {
			if s != got[0][i%3] && s != got[0][i] {
				t.Fatalf("goroutine %d request %d: another series for code %d", g, i, 200+i%3)
			}
			if s.key.code != 200+i%3 {
				t.Fatalf("goroutine %d request %d: series of code %d, want %d", g, i, s.key.code, 200+i%3)
			}
		}
	}
}

// BenchmarkSeries compares finding a request's metric series in a
// sync.Map keyed by the label set (the baseline: the key is hashed
// through an interface) with Metrics.series, for one label set (every
// request of a tunnel) and for two alternating ones.
//
//	go test -run='^$' -bench=Series ./waypoint/telemetry
func BenchmarkSeries(b *testing.B) {
	la, lb := seriesLabels(), seriesLabels()
	lb.Source.Workload = "other"
	for _, tc := range []struct {
		name string
		sets []Labels
	}{{"one", []Labels{la}}, {"alternating", []Labels{la, lb}}} {
		b.Run(tc.name, func(b *testing.B) {
			m := NewMetrics()
			var base sync.Map
			for _, l := range tc.sets {
				base.Store(seriesKey{l, 200, ""}, m.series(l, 200, ""))
			}
			var baseNS, newNS float64
			b.Run("sync.Map", func(b *testing.B) {
				i := 0
				for b.Loop() {
					l := tc.sets[i%len(tc.sets)]
					i++
					if _, ok := base.Load(seriesKey{l, 200, ""}); !ok {
						b.Fatal("missing")
					}
				}
				baseNS = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			})
			b.Run("series", func(b *testing.B) {
				i := 0
				for b.Loop() {
					m.series(tc.sets[i%len(tc.sets)], 200, "")
					i++
				}
				newNS = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				if baseNS > 0 {
					b.ReportMetric(newNS/baseNS, "x-of-sync.Map")
				}
			})
		})
	}
}
