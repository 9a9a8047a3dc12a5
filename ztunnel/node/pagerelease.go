package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/weftmesh/weft/ztunnel/inpod"
)

// DefaultReleasePagesAfter is how long after readiness, and after the last
// pod enrollment, ztunnel drops its mappings of the executable's pages.
const DefaultReleasePagesAfter = 10 * time.Second

// pageReleaser drops the executable's mappings (releaseExePages) once
// ztunnel has been ready for `after`, and again `after` past the last pod
// enrollment: start-up and enrolling a pod (entering its network
// namespace, opening its listeners, its certificate signing request) run
// code that the data path never does, and a burst of enrollments maps it
// all in again. Safe for concurrent use.
type pageReleaser struct {
	after   time.Duration
	release func() (int, error)
	log     *slog.Logger

	mu       sync.Mutex
	ready    bool
	closed   bool
	timer    *time.Timer
	releases int
}

// newPageReleaser returns a releaser; after <= 0 disables it.
func newPageReleaser(after time.Duration, release func() (int, error), log *slog.Logger) *pageReleaser {
	return &pageReleaser{after: after, release: release, log: log}
}

// Ready starts the first wait.
func (r *pageReleaser) Ready() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ready = true
	r.armLocked()
}

// Enrolled restarts the wait after a pod enrollment (before readiness, the
// first wait has not started yet and nothing changes).
func (r *pageReleaser) Enrolled() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ready {
		r.armLocked()
	}
}

func (r *pageReleaser) armLocked() {
	if r.after <= 0 || r.closed {
		return
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(r.after, r.fire)
		return
	}
	r.timer.Reset(r.after)
}

func (r *pageReleaser) fire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
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
func (r *pageReleaser) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
	}
}

// Wrap returns h, telling r of every pod it starts serving.
func (r *pageReleaser) Wrap(h inpod.Handler) inpod.Handler {
	return inpod.HandlerFunc(func(pod *inpod.Pod) {
		r.Enrolled()
		h.ServePod(pod)
	})
}
