//go:build linux

package tunnel

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/hbone3"
)

// BenchmarkTransports compares HBONE over QUIC with HBONE over HTTP/2
// between two pods' netns on one veth pair, through the real Client and
// Server (the server echoes). Each op opens a tunnel on the pooled
// connection and round-trips 1 byte (latency), then pushes 1 MiB each way
// (throughput). Reported: p50/p99 open+round-trip latency and MB/s of each
// transport, and the quic/h2 ratios.
//
//	go test -run '^$' -bench Transports -benchtime 30x ./ztunnel/tunnel
func BenchmarkTransports(b *testing.B) {
	n := newNet(b, nil)
	quic, _ := n.client(b, n.certs)
	h2, err := NewClient(Config{Certs: n.certs})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h2.Close() })
	type result struct {
		lat   []time.Duration
		bytes int64
		busy  time.Duration
	}
	const bulk = 1 << 20
	buf := make([]byte, bulk)
	run := func(c *Client, want string, r *result) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		conn, err := c.Connect(ctx, n.request())
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		if got := transportOf(conn); got != want {
			b.Fatalf("transport %s, want %s", got, want)
		}
		echo(b, conn)
		r.lat = append(r.lat, time.Since(start))
		start = time.Now()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		done := make(chan error, 1)
		go func() {
			_, err := io.CopyN(io.Discard, conn, bulk)
			done <- err
		}()
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		r.busy += time.Since(start)
		r.bytes += 2 * bulk
	}
	var q, h result
	// Warm both pools (handshakes are not what is measured).
	run(quic, hbone3.TransportQUIC, &result{})
	run(h2, hbone3.TransportH2, &result{})
	b.ResetTimer()
	for range b.N {
		run(h2, hbone3.TransportH2, &h)
		run(quic, hbone3.TransportQUIC, &q)
	}
	b.StopTimer()
	pct := func(l []time.Duration, p float64) float64 {
		s := slices.Clone(l)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))].Microseconds())
	}
	mbps := func(r result) float64 { return float64(r.bytes) / r.busy.Seconds() / 1e6 }
	b.ReportMetric(pct(h.lat, 0.5), "h2-p50-µs")
	b.ReportMetric(pct(q.lat, 0.5), "quic-p50-µs")
	b.ReportMetric(pct(h.lat, 0.99), "h2-p99-µs")
	b.ReportMetric(pct(q.lat, 0.99), "quic-p99-µs")
	b.ReportMetric(pct(q.lat, 0.99)/pct(h.lat, 0.99), "quic/h2-p99")
	b.ReportMetric(mbps(h), "h2-MB/s")
	b.ReportMetric(mbps(q), "quic-MB/s")
	b.ReportMetric(mbps(q)/mbps(h), "quic/h2-MB/s")
}
