package breaker

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

type stats struct{ Conns, Active, Pending int64 }

func poolStats(p *Pool) stats {
	c, a, q := p.Stats()
	return stats{c, a, q}
}

func wantOverflow(t *testing.T, err error, limit Limit) {
	t.Helper()
	var oe *OverflowError
	if !errors.As(err, &oe) || oe.Limit != limit || !errors.Is(err, ErrOverflow) {
		t.Fatalf("err = %v, want *OverflowError{%v} matching ErrOverflow", err, limit)
	}
}

func TestPoolUnlimited(t *testing.T) {
	for name, cp := range map[string]*l7api.ConnectionPool{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			p := NewPool(cp, WithOneRequestPerConnection())
			var releases []func()
			for range 1000 {
				r, err := p.Acquire(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				releases = append(releases, r)
				rc, err := p.AcquireConn()
				if err != nil {
					t.Fatal(err)
				}
				releases = append(releases, rc)
			}
			if diff := cmp.Diff(stats{1000, 1000, 0}, poolStats(p)); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			for _, r := range releases {
				r()
			}
			if diff := cmp.Diff(stats{}, poolStats(p)); diff != "" {
				t.Errorf("stats after release (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPoolMaxRequestsShedsAtOnce(t *testing.T) {
	p := NewPool(&l7api.ConnectionPool{MaxRequests: 2, MaxPendingRequests: 10})
	r1, _ := p.Acquire(context.Background())
	r2, _ := p.Acquire(context.Background())
	_, err := p.Acquire(context.Background())
	wantOverflow(t, err, MaxRequests)
	r1()
	r3, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire after a release: %v", err)
	}
	r2()
	r3()
	if diff := cmp.Diff(stats{}, poolStats(p)); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestPoolMaxConnections(t *testing.T) {
	p := NewPool(&l7api.ConnectionPool{MaxConnections: 1})
	rc, err := p.AcquireConn()
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.AcquireConn()
	wantOverflow(t, err, MaxConnections)
	// Multiplexed: connections do not limit requests.
	for range 10 {
		if _, err := p.Acquire(context.Background()); err != nil {
			t.Fatalf("Acquire: %v", err)
		}
	}
	rc()
	if _, err := p.AcquireConn(); err != nil {
		t.Errorf("AcquireConn after release: %v", err)
	}
}

// TestPoolPendingQueue follows Istio's circuit-breaking sample: one
// connection, one pending request; the third concurrent request is shed.
func TestPoolPendingQueue(t *testing.T) {
	p := NewPool(&l7api.ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1}, WithOneRequestPerConnection())
	first, err := p.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		r, err := p.Acquire(context.Background())
		if err != nil {
			t.Errorf("queued Acquire: %v", err)
		}
		got <- r
	}()
	waitFor(t, func() bool { return poolStats(p).Pending == 1 })
	_, err = p.Acquire(context.Background())
	wantOverflow(t, err, MaxPendingRequests)

	first() // hands the slot to the waiter
	second := <-got
	if diff := cmp.Diff(stats{0, 1, 0}, poolStats(p)); diff != "" {
		t.Errorf("stats after hand-over (-want +got):\n%s", diff)
	}
	second()
	if diff := cmp.Diff(stats{}, poolStats(p)); diff != "" {
		t.Errorf("stats at the end (-want +got):\n%s", diff)
	}
}

func TestPoolWaitHonoursContext(t *testing.T) {
	p := NewPool(&l7api.ConnectionPool{MaxConnections: 1}, WithOneRequestPerConnection())
	release, _ := p.Acquire(context.Background())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Acquire(ctx)
		done <- err
	}()
	waitFor(t, func() bool { return poolStats(p).Pending == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff(stats{0, 1, 0}, poolStats(p)); diff != "" {
		t.Errorf("stats after cancel (-want +got):\n%s", diff)
	}
	// An already ended context does not queue.
	if _, err := p.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with an ended context = %v, want context.Canceled", err)
	}
	release()
	if diff := cmp.Diff(stats{}, poolStats(p)); diff != "" {
		t.Errorf("stats at the end (-want +got):\n%s", diff)
	}
}

func TestPoolFIFO(t *testing.T) {
	p := NewPool(&l7api.ConnectionPool{MaxConnections: 1}, WithOneRequestPerConnection())
	release, _ := p.Acquire(context.Background())
	order := make(chan int, 5)
	for i := range 5 {
		go func() {
			r, err := p.Acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			r()
		}()
		waitFor(t, func() bool { return poolStats(p).Pending == int64(i+1) })
	}
	release()
	for want := range 5 {
		if got := <-order; got != want {
			t.Fatalf("waiter %d got the slot, want %d", got, want)
		}
	}
}

// TestPoolConcurrentNeverExceedsLimit hammers a pool with cancellations
// racing hand-overs; active requests never exceed the limit and every slot
// returns.
func TestPoolConcurrentNeverExceedsLimit(t *testing.T) {
	p := NewPool(&l7api.ConnectionPool{MaxConnections: 3, MaxPendingRequests: 4}, WithOneRequestPerConnection())
	var inside, peak atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				ctx, cancel := context.WithCancel(context.Background())
				if (g+i)%3 == 0 {
					cancel()
				}
				r, err := p.Acquire(ctx)
				cancel()
				if err != nil {
					continue
				}
				n := inside.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				inside.Add(-1)
				r()
			}
		})
	}
	wg.Wait()
	if got := peak.Load(); got > 3 {
		t.Errorf("peak %d concurrent requests, limit 3", got)
	}
	if diff := cmp.Diff(stats{}, poolStats(p)); diff != "" {
		t.Errorf("stats at the end (-want +got):\n%s", diff)
	}
}

func TestOverflowError(t *testing.T) {
	err := error(&OverflowError{Limit: MaxPendingRequests, Max: 5})
	if got, want := err.Error(), "circuit breaker overflow: max_pending_requests reached"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if Limit(0).String() != "unknown" || MaxConnections.String() != "max_connections" || MaxRequests.String() != "max_requests" {
		t.Error("Limit.String")
	}
}

// waitFor yields until cond holds: it observes another goroutine reaching
// a blocking point and never sleeps.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		runtime.Gosched()
	}
}
