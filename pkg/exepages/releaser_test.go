package exepages

import (
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

func armed(r *Releaser) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timer != nil
}

func TestReleaserReleasesAfterReady(t *testing.T) {
	c := newCountingRelease()
	r := NewReleaser(10*time.Millisecond, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Changed() // before readiness (the start-up itself): nothing to wait for yet
	if armed(r) {
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
	if !armed(r) || c.calls.Load() != 0 {
		t.Fatalf("armed %v, releases %d: want one pending release an hour away", armed(r), c.calls.Load())
	}
}

func TestReleaserDisabledAndClosed(t *testing.T) {
	c := newCountingRelease()
	off := NewReleaser(0, c.release, slog.New(slog.DiscardHandler))
	off.Ready()
	off.Changed()
	if armed(off) {
		t.Error("a zero delay armed a release")
	}

	r := NewReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	r.Ready()
	r.Close()
	r.Close() // idempotent
	r.fire()  // a timer that fired as Close ran
	r.Changed()
	if c.calls.Load() != 0 {
		t.Errorf("released %d times after Close", c.calls.Load())
	}
}

func TestReleaserKeepsGoingAfterAFailure(t *testing.T) {
	fails := 0
	r := NewReleaser(time.Hour, func() (int, error) { fails++; return 0, errors.New("madvise: invalid argument") }, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Ready()
	r.fire()
	r.Changed()
	if fails != 1 || !armed(r) {
		t.Errorf("release calls %d, armed %v after a failed release: want 1 and a new wait", fails, armed(r))
	}
}
