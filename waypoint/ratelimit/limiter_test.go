package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// fakeClock is a manually advanced clock, safe for concurrent use.
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

func rateLimit(key l7api.RateLimit_Key, maxTokens, perFill uint32, interval time.Duration) *l7api.RateLimit {
	return &l7api.RateLimit{Key: key, MaxTokens: maxTokens, TokensPerFill: perFill, FillInterval: durationpb.New(interval)}
}

func mustNew(t testing.TB, rl *l7api.RateLimit, opts ...Option) *Limiter {
	t.Helper()
	l, err := New(rl, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

type result struct {
	OK         bool
	RetryAfter time.Duration
}

// step advances the clock by Advance and then calls Allow(Key).
type step struct {
	Advance time.Duration
	Key     string
	Want    result
}

func TestAllow(t *testing.T) {
	ok := result{OK: true}
	deny := func(d time.Duration) result { return result{RetryAfter: d} }
	tests := []struct {
		name  string
		rl    *l7api.RateLimit
		steps []step
	}{
		{
			name: "burst then refill one per interval",
			rl:   rateLimit(l7api.RateLimit_ROUTE, 3, 1, time.Second),
			steps: []step{
				{Want: ok}, {Want: ok}, {Want: ok},
				{Want: deny(time.Second)},
				{Advance: 400 * time.Millisecond, Want: deny(600 * time.Millisecond)},
				{Advance: 600 * time.Millisecond, Want: ok},
				{Want: deny(time.Second)},
			},
		},
		{
			name: "refills keep their phase",
			rl:   rateLimit(l7api.RateLimit_ROUTE, 2, 1, time.Second),
			steps: []step{
				{Advance: 300 * time.Millisecond, Want: ok}, {Want: ok},
				{Want: deny(700 * time.Millisecond)},
				{Advance: 2 * time.Second, Want: ok}, // refills at 1s and 2s: 2 tokens
				{Want: ok},
				{Want: deny(700 * time.Millisecond)},
			},
		},
		{
			name: "long idle refills only to max_tokens",
			rl:   rateLimit(l7api.RateLimit_ROUTE, 2, 1, time.Second),
			steps: []step{
				{Want: ok}, {Want: ok},
				{Advance: time.Hour, Want: ok}, {Want: ok},
				{Want: deny(time.Second)},
			},
		},
		{
			name: "tokens_per_fill adds several tokens per fill",
			rl:   rateLimit(l7api.RateLimit_ROUTE, 10, 4, 100*time.Millisecond),
			steps: []step{
				{Advance: 0, Want: ok}, {Want: ok}, {Want: ok}, {Want: ok}, {Want: ok},
				{Want: ok}, {Want: ok}, {Want: ok}, {Want: ok}, {Want: ok},
				{Want: deny(100 * time.Millisecond)},
				{Advance: 100 * time.Millisecond, Want: ok}, {Want: ok}, {Want: ok}, {Want: ok},
				{Want: deny(100 * time.Millisecond)},
			},
		},
		{
			name: "zero tokens_per_fill means one",
			rl:   rateLimit(l7api.RateLimit_ROUTE, 1, 0, time.Second),
			steps: []step{
				{Want: ok}, {Want: deny(time.Second)},
				{Advance: time.Second, Want: ok}, {Want: deny(time.Second)},
			},
		},
		{
			name: "per-route limiter ignores the key",
			rl:   rateLimit(l7api.RateLimit_ROUTE, 1, 1, time.Second),
			steps: []step{
				{Key: "a", Want: ok}, {Key: "b", Want: deny(time.Second)},
			},
		},
		{
			name: "per-source limiter has a bucket per key",
			rl:   rateLimit(l7api.RateLimit_SOURCE, 1, 1, time.Second),
			steps: []step{
				{Key: "a", Want: ok}, {Key: "b", Want: ok},
				{Key: "a", Want: deny(time.Second)},
				{Advance: 500 * time.Millisecond, Key: "c", Want: ok},
				{Key: "c", Want: deny(time.Second)}, // c's phase starts at its creation
				{Key: "b", Want: deny(500 * time.Millisecond)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			l := mustNew(t, tt.rl, WithClock(clk.Now))
			for i, s := range tt.steps {
				clk.Advance(s.Advance)
				var got result
				got.OK, got.RetryAfter = l.Allow(s.Key)
				if diff := cmp.Diff(s.Want, got); diff != "" {
					t.Fatalf("step %d: Allow(%q) (-want +got):\n%s", i, s.Key, diff)
				}
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, rl := range map[string]*l7api.RateLimit{
		"nil":           nil,
		"zero max":      rateLimit(l7api.RateLimit_ROUTE, 0, 1, time.Second),
		"zero interval": {MaxTokens: 1},
		"negative":      rateLimit(l7api.RateLimit_ROUTE, 1, 1, -time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(rl); err == nil {
				t.Fatal("New succeeded, want error")
			}
		})
	}
}

func TestKeyFor(t *testing.T) {
	route := mustNew(t, rateLimit(l7api.RateLimit_ROUTE, 1, 1, time.Second))
	source := mustNew(t, rateLimit(l7api.RateLimit_SOURCE, 1, 1, time.Second))
	const id = "spiffe://cluster.local/ns/demo/sa/client"
	if got := route.KeyFor(id); got != "" {
		t.Errorf("per-route KeyFor = %q, want empty", got)
	}
	if got := source.KeyFor(id); got != id {
		t.Errorf("per-source KeyFor = %q, want %q", got, id)
	}
}

func TestKeyFloodIsBounded(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, rateLimit(l7api.RateLimit_SOURCE, 1, 1, time.Minute), WithClock(clk.Now), WithMaxKeys(100))
	l.Allow("victim") // drains victim's only token
	for i := range 100_000 {
		if i%50 == 0 {
			l.Allow("victim") // keeps victim recently used
		}
		if ok, _ := l.Allow(fmt.Sprintf("flood-%d", i)); !ok {
			t.Fatalf("new key flood-%d denied; a new key starts with a full bucket", i)
		}
	}
	if got := l.Len(); got != 100 {
		t.Errorf("Len = %d after flood, want 100", got)
	}
	if ok, _ := l.Allow("victim"); ok {
		t.Error("victim allowed: its drained bucket was evicted although recently used")
	}
	// The least recently used key was forgotten and starts full again.
	if ok, _ := l.Allow("flood-0"); !ok {
		t.Error("evicted key flood-0 denied, want a fresh full bucket")
	}
}

func TestConcurrentAllowGrantsExactlyMaxTokens(t *testing.T) {
	for _, key := range []l7api.RateLimit_Key{l7api.RateLimit_ROUTE, l7api.RateLimit_SOURCE} {
		t.Run(key.String(), func(t *testing.T) {
			clk := newFakeClock()
			l := mustNew(t, rateLimit(key, 1000, 1, time.Hour), WithClock(clk.Now))
			var granted atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for range 500 {
						if ok, _ := l.Allow("k"); ok {
							granted.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if got := granted.Load(); got != 1000 {
				t.Errorf("granted %d of 4000, want exactly 1000", got)
			}
		})
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *Limiter
	if ok, after := l.Allow(l.KeyFor("x")); !ok || after != 0 || l.Len() != 0 {
		t.Errorf("nil Limiter: Allow = %v, %v; Len = %d; want true, 0; 0", ok, after, l.Len())
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int64{
		time.Nanosecond:         1,
		999 * time.Millisecond:  1,
		time.Second:             1,
		1001 * time.Millisecond: 2,
		90 * time.Second:        90,
	} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
