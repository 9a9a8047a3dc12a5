package node

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftmesh/weft/ztunnel/inpod"
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

func armed(r *pageReleaser) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timer != nil
}

func TestPageReleaserReleasesAfterReady(t *testing.T) {
	c := newCountingRelease()
	r := newPageReleaser(10*time.Millisecond, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Enrolled() // before readiness: the snapshot's pods, nothing to wait for yet
	if armed(r) {
		t.Fatal("an enrollment before readiness armed a release")
	}
	r.Ready()
	c.wait(t)
	r.Enrolled() // a pod enrolled later: released again once settled
	c.wait(t)
	if got := c.calls.Load(); got != 2 {
		t.Errorf("releases = %d, want 2", got)
	}
}

func TestPageReleaserWaitsForEnrollmentsToSettle(t *testing.T) {
	c := newCountingRelease()
	r := newPageReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Ready()
	r.Enrolled()
	r.Enrolled()
	if !armed(r) || c.calls.Load() != 0 {
		t.Fatalf("armed %v, releases %d: want one pending release an hour away", armed(r), c.calls.Load())
	}
}

func TestPageReleaserDisabledAndClosed(t *testing.T) {
	c := newCountingRelease()
	off := newPageReleaser(0, c.release, slog.New(slog.DiscardHandler))
	off.Ready()
	off.Enrolled()
	if armed(off) {
		t.Error("a zero delay armed a release")
	}

	r := newPageReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	r.Ready()
	r.Close()
	r.Close() // idempotent
	r.fire()  // a timer that fired as Close ran
	r.Enrolled()
	if c.calls.Load() != 0 {
		t.Errorf("released %d times after Close", c.calls.Load())
	}
}

func TestPageReleaserKeepsGoingAfterAFailure(t *testing.T) {
	fails := 0
	r := newPageReleaser(time.Hour, func() (int, error) { fails++; return 0, errors.New("madvise: invalid argument") }, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Ready()
	r.fire()
	r.Enrolled()
	if fails != 1 || !armed(r) {
		t.Errorf("release calls %d, armed %v after a failed release: want 1 and a new wait", fails, armed(r))
	}
}

func TestPageReleaserWrapTellsOfEnrollments(t *testing.T) {
	c := newCountingRelease()
	r := newPageReleaser(time.Hour, c.release, slog.New(slog.DiscardHandler))
	defer r.Close()
	r.Ready()
	r.timer.Stop()
	r.timer = nil
	served := false
	r.Wrap(inpod.HandlerFunc(func(*inpod.Pod) { served = true })).ServePod(&inpod.Pod{})
	if !served || !armed(r) {
		t.Errorf("served %v, armed %v: want the pod served and a release pending", served, armed(r))
	}
}
