package loadgen

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	var hundred []time.Duration
	for i := 100; i >= 1; i-- {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    Latency
	}{
		{"empty", nil, Latency{}},
		{"one", []time.Duration{3 * time.Millisecond}, Latency{Count: 1, P50: 3, P90: 3, P99: 3, Max: 3, Mean: 3}},
		{"hundred", hundred, Latency{Count: 100, P50: 50, P90: 90, P99: 99, Max: 100, Mean: 50.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Summarize(tc.samples)); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
		})
	}
}

// freePort returns a loopback address nothing listens on yet.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never listened", addr)
}

// startServer runs Serve on loopback for the test.
func startServer(t *testing.T) ServerConfig {
	t.Helper()
	cfg := ServerConfig{HTTP: freePort(t), Source: freePort(t), Hold: freePort(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	for _, a := range []string{cfg.HTTP, cfg.Source, cfg.Hold} {
		waitListening(t, a)
	}
	return cfg
}

func TestOpenLoop(t *testing.T) {
	srv := startServer(t)
	res, err := OpenLoop(context.Background(), LatencyConfig{Addr: srv.HTTP, Rate: 200, Conns: 2, Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Latency.Count < 95 || res.Latency.Count > 101 || res.Errors != 0 || !res.Sustained {
		t.Errorf("200 rps for 0.5 s: %+v, want about 100 answered samples, sustained", res)
	}
	if res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || res.Latency.Max < res.Latency.P99 {
		t.Errorf("percentiles out of order: %+v", res.Latency)
	}
}

// TestOpenLoopChargesQueueing checks coordinated-omission-free recording:
// a path that takes 20 ms per request over one connection cannot carry
// 200 rps, and the latencies must grow with the queue instead of staying
// at 20 ms.
func TestOpenLoopChargesQueueing(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	go func() { // a slow HTTP server: 20 ms per answer
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				buf := make([]byte, 64<<10)
				var got int
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					got += n
					for got >= 100+BodySize { // header (about 100 bytes) and body
						got = 0
						time.Sleep(20 * time.Millisecond)
						if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	res, err := OpenLoop(context.Background(), LatencyConfig{Addr: l.Addr().String(), Rate: 200, Conns: 1, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sustained || res.Latency.Max < 100 {
		t.Errorf("an overloaded path: %+v, want not sustained and max latency well over the 20 ms service time", res)
	}
}

func TestCapacityConnRateThroughputHold(t *testing.T) {
	srv := startServer(t)
	ctx := context.Background()
	rps, err := Capacity(ctx, srv.HTTP, "/", 2, 50*time.Millisecond, 200*time.Millisecond)
	if err != nil || rps < 100 {
		t.Errorf("Capacity = %.0f, %v; want over 100 rps on loopback", rps, err)
	}
	for _, serverCloses := range []bool{false, true} {
		cr, err := ConnRate(ctx, srv.HTTP, 2, serverCloses, 50*time.Millisecond, 200*time.Millisecond)
		if err != nil || cr.PerS < 50 || cr.Errors != 0 {
			t.Errorf("ConnRate(server closes %t) = %+v, %v", serverCloses, cr, err)
		}
	}
	tp, err := Throughput(ctx, srv.Source, 2, 50*time.Millisecond, 200*time.Millisecond)
	if err != nil || tp.MbitPerS < 10 {
		t.Errorf("Throughput = %+v, %v", tp, err)
	}
	hctx, cancel := context.WithCancel(ctx)
	var got HoldResult
	err = Hold(hctx, srv.Hold, 50, 8, func(r HoldResult) { got = r; cancel() })
	if err != nil || got.Open != 50 {
		t.Errorf("Hold = %+v, %v; want 50 open", got, err)
	}
}

func TestRelayPair(t *testing.T) {
	srv := startServer(t)
	out, in := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Relay(ctx, []Route{{Mode: TLSOut, Listen: out, Target: in}, {Mode: TLSIn, Listen: in, Target: srv.HTTP}}, slog.New(slog.DiscardHandler))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Relay: %v", err)
		}
	}()
	waitListening(t, out)
	res, err := OpenLoop(context.Background(), LatencyConfig{Addr: out, Rate: 100, Conns: 1, Duration: 200 * time.Millisecond})
	if err != nil || res.Errors != 0 || res.Latency.Count < 15 {
		t.Errorf("through the relay pair: %+v, %v", res, err)
	}
}

func TestParseRoute(t *testing.T) {
	r, err := ParseRoute(TLSIn, ":15911=10.1.2.3:8080")
	if diff := cmp.Diff(Route{Mode: TLSIn, Listen: ":15911", Target: "10.1.2.3:8080"}, r); diff != "" || err != nil {
		t.Errorf("ParseRoute: %v (-want +got):\n%s", err, diff)
	}
	if _, err := ParseRoute(TLSOut, ":1"); err == nil {
		t.Error("ParseRoute without target: want an error")
	}
}
