package hbone

import (
	"fmt"
	"io"
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
// or, for a table: go test -run=TestBenchReport -hbone.report -v ./pkg/hbone

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
}

func runThroughput(b *testing.B, p benchPath, m *mesh) throughputResult {
	c := p.open(b, m, "sink")
	buf := make([]byte, throughputChunk)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.SetBytes(throughputChunk)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		b.Fatal(err)
	}
	ack, err := io.ReadAll(c)
	if err != nil || string(ack) != "ok" {
		b.Fatalf("sink ack %q, %v: %v", ack, err, errShortAck)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	total := float64(b.N) * throughputChunk
	return throughputResult{
		bytesPerSec:  total / elapsed.Seconds(),
		allocsPerMiB: float64(ms1.Mallocs-ms0.Mallocs) / (total / (1 << 20)),
	}
}

// BenchmarkThroughput measures one connection (one stream) sending bulk
// data to a sink.
func BenchmarkThroughput(b *testing.B) {
	m := newMesh()
	for _, p := range benchPaths {
		b.Run(p.name, func(b *testing.B) {
			r := runThroughput(b, p, m)
			b.ReportMetric(r.bytesPerSec*8/1e9, "Gbit/s")
			b.ReportMetric(r.allocsPerMiB, "allocs/MiB")
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

func runLatency(b *testing.B, p benchPath, m *mesh) latencyResult {
	c := p.open(b, m, "echo")
	req := make([]byte, 1<<10)
	resp := make([]byte, 1<<10)
	// Warm up the connection (TLS record sizing, windows, goroutines).
	for range 200 {
		_, _ = c.Write(req)
		_, _ = io.ReadFull(c, resp)
	}
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(samples)
	return latencyResult{p50: samples[len(samples)/2], p99: samples[len(samples)*99/100]}
}

// BenchmarkLatency measures 1 KiB request/response round trips on one
// connection (one stream).
func BenchmarkLatency(b *testing.B) {
	m := newMesh()
	for _, p := range benchPaths {
		b.Run(p.name, func(b *testing.B) {
			r := runLatency(b, p, m)
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

func fmtRate(bps float64) string { return fmt.Sprintf("%.2f", bps*8/1e9) }
