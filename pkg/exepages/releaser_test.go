package exepages

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// countingRelease counts calls and reports each on a channel.
type countingRelease struct {
	calls atomic.Int32
	done  chan struct{}
}

func newCountingRelease() *countingRelease { return &countingRelease{done: make(chan struct{}, 16)} }

func (c *countingRelease) release() (int, error) {
	c.calls.Add(1)
	c.done <- struct{}{}
	return 4096, nil
}

func (c *countingRelease) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no release")
	}
}

// pending reports whether a wait for a release is running.
func pending(r *Releaser) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.first.IsZero()
}

func TestReleaserReleasesAfterReady(t *testing.T) {
	c := newCountingRelease()
	r := NewReleaser(10*time.Millisecond, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Changed() // before readiness (the start-up itself): nothing to wait for yet
	if pending(r) {
		t.Fatal("a change before readiness armed a release")
	}
	r.Ready()
	c.wait(t)
	r.Changed() // later start-up-like work: released again once settled
	c.wait(t)
	if got := c.calls.Load(); got != 2 {
		t.Errorf("releases = %d, want 2", got)
	}
}

func TestReleaserWaitsForChangesToSettle(t *testing.T) {
	c := newCountingRelease()
	r := NewReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Ready()
	r.Changed()
	r.Changed()
	if !pending(r) || c.calls.Load() != 0 {
		t.Fatalf("pending %v, releases %d: want one pending release an hour away", pending(r), c.calls.Load())
	}
}

func TestReleaserDisabledAndClosed(t *testing.T) {
	c := newCountingRelease()
	off := NewReleaser(0, c.release, slog.New(slog.DiscardHandler))
	off.Ready()
	off.Changed()
	if pending(off) {
		t.Error("a zero delay armed a release")
	}

	r := NewReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	r.Ready()
	r.Close()
	r.Close()     // idempotent
	r.fire(r.gen) // a timer that fired as Close ran
	r.Changed()
	if c.calls.Load() != 0 {
		t.Errorf("released %d times after Close", c.calls.Load())
	}
}

// The timer of a wait that a change re-armed, gone off just before,
// neither releases nor ends the new wait.
func TestReleaserIgnoresAnEarlierWaitsTimer(t *testing.T) {
	c := newCountingRelease()
	r := NewReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Ready()
	stale := r.gen
	r.Changed()
	r.fire(stale)
	if c.calls.Load() != 0 || !pending(r) {
		t.Errorf("after an earlier wait's timer: released %d times, pending %v; want 0 and the new wait pending", c.calls.Load(), pending(r))
	}
}

func TestReleaserKeepsGoingAfterAFailure(t *testing.T) {
	fails := 0
	r := NewReleaser(time.Hour, func() (int, error) { fails++; return 0, errors.New("madvise: invalid argument") }, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Ready()
	r.fire(r.gen)
	r.Changed()
	if fails != 1 || !pending(r) {
		t.Errorf("release calls %d, pending %v after a failed release: want 1 and a new wait", fails, pending(r))
	}
}

func TestNextWait(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		since time.Duration // from the wait's first change to now
		want  time.Duration
	}{
		{0, 10 * time.Second},
		{45 * time.Second, 10 * time.Second},
		{50 * time.Second, 10 * time.Second},
		{55 * time.Second, 5 * time.Second}, // changes every few seconds: released a minute after the first
		{70 * time.Second, -10 * time.Second},
	} {
		if got := nextWait(t0, t0.Add(c.since), 10*time.Second); got != c.want {
			t.Errorf("nextWait %s after the first change = %s, want %s", c.since, got, c.want)
		}
	}
}

func TestReleaserReleasesDuringEndlessChanges(t *testing.T) {
	c := newCountingRelease()
	r := NewReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	r.Ready()
	for range 5 * maxWaits { // a change every 15 minutes, for hours
		clock = clock.Add(15 * time.Minute)
		r.Changed()
	}
	// The first wait began 7.5 hours ago: the timer is due at once.
	c.wait(t)
	if r.Changed(); !pending(r) {
		t.Error("no wait pending after a change that followed the release")
	}
}

func TestReleaserReadyAfter(t *testing.T) {
	c := newCountingRelease()
	r := NewReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	a, b := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.ReadyAfter(ctx, a, b) // ends with ctx: not ready
	if r.Changed(); pending(r) {
		t.Fatal("ready although a readiness channel never closed")
	}
	close(a)
	close(b)
	r.ReadyAfter(context.Background(), a, b)
	if !pending(r) {
		t.Error("no wait pending once every readiness channel closed")
	}
}
