package exepages

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultAfter is how long after readiness, and after the last burst of
// start-up-like work, a Releaser waits before it releases.
const DefaultAfter = 10 * time.Second

// Releaser calls a release function (Release in production) once the
// process has been ready for a while, and again the same while after the
// last Changed: readiness and every Changed restart the wait, so a burst
// of enrollments or configuration changes is released once, after it
// settles. Changes that never pause for that long put a release off by at
// most maxWaits waits. Safe for concurrent use.
type Releaser struct {
	after   time.Duration
	release func() (int, error)
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	ready    bool
	closed   bool
	timer    *time.Timer
	gen      uint64    // the pending wait's timer; an earlier one that fires does nothing
	first    time.Time // when the pending wait began; zero when none is pending
	releases int
}

// maxWaits bounds how far changes can put a release off: a node that
// enrolls a pod every few seconds still releases every minute.
const maxWaits = 6

// NewReleaser returns a Releaser that waits after before calling release;
// after <= 0 disables it.
func NewReleaser(after time.Duration, release func() (int, error), log *slog.Logger) *Releaser {
	return &Releaser{after: after, release: release, log: log, now: time.Now}
}

// Ready starts the first wait.
func (r *Releaser) Ready() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ready = true
	r.armLocked()
}

// ReadyAfter waits until every channel in ready is closed and then calls
// Ready; it returns without calling it when ctx ends first.
func (r *Releaser) ReadyAfter(ctx context.Context, ready ...<-chan struct{}) {
	for _, ch := range ready {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
	r.Ready()
}

// Changed restarts the wait after start-up-like work (a pod enrollment, a
// configuration change). Before Ready it does nothing: the first wait has
// not started.
func (r *Releaser) Changed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ready {
		r.armLocked()
	}
}

func (r *Releaser) armLocked() {
	if r.after <= 0 || r.closed {
		return
	}
	now := r.now()
	if r.first.IsZero() {
		r.first = now
	}
	wait := nextWait(r.first, now, r.after)
	// A new timer per wait, not Reset: a timer that already went off (its
	// fire waiting for mu) would go off again once Reset, and its first
	// firing would end the new wait early. The generation tells them apart.
	if r.timer != nil {
		r.timer.Stop()
	}
	r.gen++
	gen := r.gen
	r.timer = time.AfterFunc(wait, func() { r.fire(gen) })
}

// nextWait is how long to wait at now for a wait that began at first: a
// whole wait, but no later than maxWaits of them after first.
func nextWait(first, now time.Time, after time.Duration) time.Duration {
	return min(after, first.Add(maxWaits*after).Sub(now))
}

// fire releases at the end of the wait armed as gen; the timer of a wait
// since re-armed or closed does nothing.
func (r *Releaser) fire(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || gen != r.gen {
		return
	}
	r.first = time.Time{}
	n, err := r.release()
	if err != nil {
		r.log.Warn("could not release the executable's pages", "error", err)
		return
	}
	r.releases++
	level := slog.LevelDebug
	if r.releases == 1 {
		level = slog.LevelInfo
	}
	r.log.Log(context.Background(), level, "released the executable's pages", "mapped_kib", n>>10, "releases", r.releases)
}

// Close stops any pending release; idempotent. A release already running
// finishes first.
func (r *Releaser) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
}
