package hbone

import (
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// The benchmarks compare, in one run on loopback, raw TCP, plain TLS 1.3,
// net/http's stock HTTP/2 CONNECT over TLS and HBONE, and report HBONE's and
// stock HTTP/2's figures as ratios to plain TLS:
//
//	go test -run='^$' -bench=. -benchtime=2s ./pkg/hbone
//
// or, for a table: go test -run=TestBenchReport -v ./pkg/hbone -args -hbone.report

const throughputChunk = 32 << 10

// baseline keeps the plain TLS figures of this run for the ratios.
var baseline struct {
	sync.Mutex
	tlsBytesPerSec float64
	tlsP99         time.Duration
}

type throughputResult struct {
	bytesPerSec  float64
	allocsPerMiB float64
	// cpuPerMiB is the CPU time, both ends together, per MiB moved: the
	// cost that bounds throughput on an idle machine, and much less noisy
	// than throughput on a shared one.
	cpuPerMiB time.Duration
}

// measureThroughput sends chunks 32 KiB writes to a sink and waits for its
// acknowledgement.
func measureThroughput(tb testing.TB, c benchConn, chunks int) throughputResult {
	buf := make([]byte, throughputChunk)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	start := time.Now()
	for range chunks {
		if _, err := c.Write(buf); err != nil {
			tb.Fatal(err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		tb.Fatal(err)
	}
	ack, err := io.ReadAll(c)
	if err != nil || string(ack) != "ok" {
		tb.Fatalf("sink ack %q, %v: %v", ack, err, errShortAck)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&ms1)
	total := float64(chunks) * throughputChunk
	return throughputResult{
		bytesPerSec:  total / elapsed.Seconds(),
		allocsPerMiB: float64(ms1.Mallocs-ms0.Mallocs) / (total / (1 << 20)),
		cpuPerMiB:    time.Duration(float64(cpu) / (total / (1 << 20))),
	}
}

// BenchmarkThroughput measures one connection (one stream) sending bulk
// data to a sink.
func BenchmarkThroughput(b *testing.B) {
	m := newMesh()
	for _, p := range benchPaths {
		b.Run(p.name, func(b *testing.B) {
			c := p.open(b, m, "sink")
			b.SetBytes(throughputChunk)
			b.ResetTimer()
			r := measureThroughput(b, c, b.N)
			b.StopTimer()
			b.ReportMetric(r.bytesPerSec*8/1e9, "Gbit/s")
			b.ReportMetric(r.allocsPerMiB, "allocs/MiB")
			b.ReportMetric(float64(r.cpuPerMiB.Microseconds()), "cpu-µs/MiB")
			baseline.Lock()
			defer baseline.Unlock()
			if p.name == "tls" {
				baseline.tlsBytesPerSec = r.bytesPerSec
			} else if baseline.tlsBytesPerSec > 0 && p.name != "tcp" {
				b.ReportMetric(r.bytesPerSec/baseline.tlsBytesPerSec, "x-tls")
			}
		})
	}
}

type latencyResult struct {
	p50, p99 time.Duration
}

// measureLatency times n 1 KiB request/response round trips against an
// echo server, after a warm-up.
func measureLatency(tb testing.TB, c benchConn, n int) latencyResult {
	req := make([]byte, 1<<10)
	resp := make([]byte, 1<<10)
	for range 200 {
		_, _ = c.Write(req)
		_, _ = io.ReadFull(c, resp)
	}
	samples := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			tb.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	slices.Sort(samples)
	return latencyResult{p50: samples[len(samples)/2], p99: samples[len(samples)*99/100]}
}

// measurePaired times n 1 KiB round trips on each of conns, alternating
// between them trip by trip (in rotating order) so background load hits
// all alike.
func measurePaired(tb testing.TB, conns []benchConn, n int) []latencyResult {
	req := make([]byte, 1<<10)
	resp := make([]byte, 1<<10)
	trip := func(c benchConn) time.Duration {
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			tb.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			tb.Fatal(err)
		}
		return time.Since(t0)
	}
	for range 200 {
		for _, c := range conns {
			trip(c)
		}
	}
	samples := make([][]time.Duration, len(conns))
	for i := range samples {
		samples[i] = make([]time.Duration, 0, n)
	}
	// Shuffle the order of every round so each path follows every other
	// one equally often and no path always inherits the same neighbour's
	// leftover background work (a plain rotation puts every path after
	// the same predecessor each time).
	order := make([]int, len(conns))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range n {
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, i := range order {
			samples[i] = append(samples[i], trip(conns[i]))
		}
	}
	out := make([]latencyResult, len(conns))
	for i, s := range samples {
		slices.Sort(s)
		out[i] = latencyResult{p50: s[len(s)/2], p99: s[len(s)*99/100]}
	}
	return out
}

// BenchmarkLatencyPaired alternates plain TLS and HBONE round trips (b.N
// of each) and reports both percentiles and HBONE's p99 relative to TLS
// measured over the same moments, which on a shared machine is the fair
// comparison.
func BenchmarkLatencyPaired(b *testing.B) {
	m := newMesh()
	conns := []benchConn{openTLS(b, m, "echo"), openHBONE(b, m, "echo")}
	b.ResetTimer()
	r := measurePaired(b, conns, b.N)
	b.StopTimer()
	b.ReportMetric(us(r[0].p50), "tls-p50-µs")
	b.ReportMetric(us(r[0].p99), "tls-p99-µs")
	b.ReportMetric(us(r[1].p50), "hbone-p50-µs")
	b.ReportMetric(us(r[1].p99), "hbone-p99-µs")
	b.ReportMetric(float64(r[1].p99)/float64(r[0].p99), "p99-x-tls")
}

// BenchmarkLatency measures 1 KiB request/response round trips on one
// connection (one stream).
func BenchmarkLatency(b *testing.B) {
	m := newMesh()
	for _, p := range benchPaths {
		b.Run(p.name, func(b *testing.B) {
			c := p.open(b, m, "echo")
			b.ResetTimer()
			r := measureLatency(b, c, b.N)
			b.StopTimer()
			b.ReportMetric(float64(r.p50.Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(r.p99.Nanoseconds())/1e3, "p99-µs")
			baseline.Lock()
			defer baseline.Unlock()
			if p.name == "tls" {
				baseline.tlsP99 = r.p99
			} else if baseline.tlsP99 > 0 && p.name != "tcp" {
				b.ReportMetric(float64(r.p99)/float64(baseline.tlsP99), "p99-x-tls")
			}
		})
	}
}

// BenchmarkThroughputPaired alternates 8 MiB transfers over fresh plain TLS
// and HBONE tunnels and reports both rates and HBONE's relative to TLS
// over the same moments. b.N counts slices per path.
func BenchmarkThroughputPaired(b *testing.B) {
	m := newMesh()
	paths := []benchPath{{"tls", openTLS}, {"hbone", openHBONE}}
	const sliceChunks = 256 // 8 MiB
	secs := make([]float64, len(paths))
	cpu := make([]time.Duration, len(paths))
	b.SetBytes(sliceChunks * throughputChunk * int64(len(paths)))
	for range b.N {
		for i, p := range paths {
			b.StopTimer()
			c := p.open(b, m, "sink")
			b.StartTimer()
			r := measureThroughput(b, c, sliceChunks)
			secs[i] += sliceChunks * throughputChunk / r.bytesPerSec
			cpu[i] += r.cpuPerMiB
		}
	}
	total := float64(b.N) * sliceChunks * throughputChunk
	b.ReportMetric(total/secs[0]*8/1e9, "tls-Gbit/s")
	b.ReportMetric(total/secs[1]*8/1e9, "hbone-Gbit/s")
	b.ReportMetric(secs[0]/secs[1], "x-tls")
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "cpu-x-tls")
}
