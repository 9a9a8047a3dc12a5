package retry

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// admit calls AllowRetry n times and returns how many were admitted.
func admit(b *Budget, n int) int {
	got := 0
	for range n {
		if b.AllowRetry() {
			got++
		}
	}
	return got
}

func TestBudgetCapsRetriesToPercentOfActive(t *testing.T) {
	clk := newFakeClock()
	b := NewBudget(20, 0, WithClock(clk.Now))
	for range 1000 {
		b.Begin()
	}
	if got := admit(b, 1000); got != 200 {
		t.Fatalf("admitted %d retries with 1000 active, want 200 (20%%)", got)
	}
	// Finished retries free budget; fewer active requests shrink it.
	for range 50 {
		b.RetryDone()
	}
	if got := admit(b, 100); got != 50 {
		t.Errorf("admitted %d after 50 retries finished, want 50", got)
	}
	for range 500 {
		b.End()
	}
	for range 200 {
		b.RetryDone()
	}
	if got := admit(b, 1000); got != 100 {
		t.Errorf("admitted %d with 500 active, want 100", got)
	}
	if req, ret := b.Active(); req != 500 || ret != 100 {
		t.Errorf("Active = %d, %d; want 500, 100", req, ret)
	}
}

func TestBudgetFloorAllowsMinRetriesPerSecond(t *testing.T) {
	clk := newFakeClock()
	b := NewBudget(20, 10, WithClock(clk.Now))
	b.Begin() // one active request: 20% of it admits no retry by percent
	if got := admit(b, 100); got != 10 {
		t.Fatalf("admitted %d with an idle backend, want the floor's burst of 10", got)
	}
	clk.Advance(500 * time.Millisecond)
	if got := admit(b, 100); got != 5 {
		t.Errorf("admitted %d after 0.5 s, want 5", got)
	}
	clk.Advance(time.Hour)
	if got := admit(b, 100); got != 10 {
		t.Errorf("admitted %d after an hour, want 10 (the burst is capped)", got)
	}
}

// TestBudgetUnderLoad simulates a failing backend: every request fails and
// asks for a retry, over 10 s of 1000 rps with 100 ms latency. Retries in
// flight must stay within 20% of active requests plus the floor's
// allowance at every instant. Since a retrying request is itself active,
// retries settle at 0.2/(1-0.2) = 25% of requests, plus the floor's 10/s
// (1% here).
func TestBudgetUnderLoad(t *testing.T) {
	clk := newFakeClock()
	p := mustPolicy(t, &l7api.RetryPolicy{Attempts: 3}) // defaults: 20%, 10/s
	b := p.NewBudget(WithClock(clk.Now))
	const (
		tick      = 10 * time.Millisecond
		perTick   = 10 // 1000 rps
		latencyTk = 10 // 100 ms
	)
	type req struct{ doneAt, retryDoneAt int }
	var inflight []req
	var attempts, retries, maxRetries, maxActive int64
	for now := 0; now < 1000; now++ {
		clk.Advance(tick)
		kept := inflight[:0]
		for _, r := range inflight {
			if r.retryDoneAt == now {
				b.RetryDone()
				r.retryDoneAt = -1
			}
			if r.doneAt == now {
				// The attempt failed; retry if the budget allows.
				if r.retryDoneAt < 0 && b.AllowRetry() {
					retries++
					r.retryDoneAt = now + latencyTk
					r.doneAt = now + latencyTk
					kept = append(kept, r)
					continue
				}
				b.End()
				continue
			}
			kept = append(kept, r)
		}
		inflight = kept
		for range perTick {
			b.Begin()
			attempts++
			inflight = append(inflight, req{doneAt: now + latencyTk, retryDoneAt: -1})
		}
		a, r := b.Active()
		maxActive = max(maxActive, a)
		maxRetries = max(maxRetries, r)
		if float64(r) > 0.2*float64(a)+10 {
			t.Fatalf("tick %d: %d retries in flight with %d active requests, over 20%% + floor", now, r, a)
		}
	}
	ratio := float64(retries) / float64(attempts)
	t.Logf("%d requests, %d retries (%.1f%%), peak %d retries in flight of %d active", attempts, retries, 100*ratio, maxRetries, maxActive)
	if ratio < 0.2 || ratio > 0.265 {
		t.Errorf("retried %.1f%% of requests, want 20%%-26.5%%", 100*ratio)
	}
}

func TestBudgetConcurrent(t *testing.T) {
	clk := newFakeClock()
	b := NewBudget(20, 0, WithClock(clk.Now))
	for range 100 {
		b.Begin()
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if b.AllowRetry() {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 20 {
		t.Errorf("admitted %d concurrently, want exactly 20", got)
	}
}
