package server

import (
	"io"
	"net/http"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWaypointCPU sends the same number of GETs, 8 at a time, first
// directly to the backends' ztunnel and then through the waypoint, and
// reports the process CPU time per 1,000 requests of each; the difference
// is what the waypoint hop costs (its two mTLS legs, HTTP parsing and the
// pipeline). Istio's figure for an Envoy waypoint is 250 ms of CPU per
// 1,000 requests (0.25 vCPU at 1,000 rps).
//
//	go test -run='^$' -bench=WaypointCPU -benchtime=4000x ./waypoint/server
func BenchmarkWaypointCPU(b *testing.B) { benchCPU(b, getFixed) }

// BenchmarkWaypointCPUPOST is BenchmarkWaypointCPU with the lab bench's
// request: a 1 KiB POST answered with 1 KiB.
func BenchmarkWaypointCPUPOST(b *testing.B) { benchCPU(b, postKiB) }

func benchCPU(b *testing.B, send func(c *http.Client, hostPort string) (*http.Response, error)) {
	m := newMesh(b)
	via, direct := m.httpClient(false), m.directClient(b)
	var goroutines, allocs [2]uint64 // during the direct and the waypoint run
	run := func(c *http.Client, url string, n int) time.Duration {
		var wg sync.WaitGroup
		work := make(chan struct{}, n)
		for range n {
			work <- struct{}{}
		}
		close(work)
		start := cpuTime()
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range work {
					resp, err := send(c, url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		return cpuTime() - start
	}
	run(direct, "10.0.1.1:8080", 100)
	run(via, echoVIP, 100)
	b.ResetTimer()
	n := b.N
	g0, a0 := schedCounters()
	d := run(direct, "10.0.1.1:8080", n)
	g1, a1 := schedCounters()
	v := run(via, echoVIP, n)
	g2, a2 := schedCounters()
	goroutines, allocs = [2]uint64{g1 - g0, g2 - g1}, [2]uint64{a1 - a0, a2 - a1}
	per1k := func(t time.Duration) float64 { return float64(t.Milliseconds()) * 1000 / float64(n) }
	b.ReportMetric(per1k(d), "direct-cpu-ms/1k-req")
	b.ReportMetric(per1k(v), "waypoint-cpu-ms/1k-req")
	b.ReportMetric(per1k(v)-per1k(d), "added-cpu-ms/1k-req")
	// Load-independent: what the waypoint hop adds in goroutines started
	// and bytes allocated per request.
	b.ReportMetric((float64(goroutines[1])-float64(goroutines[0]))/float64(n), "added-goroutines/req")
	b.ReportMetric((float64(allocs[1])-float64(allocs[0]))/float64(n), "added-B/req")
}

// schedCounters reads the goroutines created and the heap bytes
// allocated so far.
func schedCounters() (goroutines, allocBytes uint64) {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		goroutines = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		allocBytes = s[1].Value.Uint64()
	}
	return goroutines, allocBytes
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
