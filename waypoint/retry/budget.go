package retry

import (
	"sync"
	"sync/atomic"
	"time"
)

// BudgetOption configures a Budget.
type BudgetOption func(*Budget)

// WithClock makes the Budget read time from now instead of time.Now. now
// must be safe for concurrent use.
func WithClock(now func() time.Time) BudgetOption { return func(b *Budget) { b.now = now } }

// Budget caps the retries to one backend: a retry may start while the
// retries in flight stay within percent of the backend's active requests,
// and, beyond that, while a token bucket refilled at minPerSecond (burst
// minPerSecond) has a token, so that a backend with little traffic can
// still be retried. Every request to the backend calls Begin and End once;
// every retry that AllowRetry admits calls RetryDone once. A Budget is safe
// for concurrent use.
type Budget struct {
	percent      float64
	minPerSecond float64
	now          func() time.Time

	active  atomic.Int64 // requests between Begin and End
	retries atomic.Int64 // retries admitted and not yet done

	mu       sync.Mutex // guards the floor bucket
	tokens   float64
	lastFill time.Time
}

// NewBudget returns a Budget allowing retries up to percent (0-100) of
// active requests, with minPerSecond retries per second always allowed.
func NewBudget(percent float64, minPerSecond uint32, opts ...BudgetOption) *Budget {
	b := &Budget{percent: percent, minPerSecond: float64(minPerSecond), now: time.Now}
	for _, o := range opts {
		o(b)
	}
	b.tokens = b.minPerSecond
	b.lastFill = b.now()
	return b
}

// Begin records that a request to the backend became active. It counts
// once per request, not per attempt.
func (b *Budget) Begin() { b.active.Add(1) }

// End records that a request begun with Begin finished.
func (b *Budget) End() { b.active.Add(-1) }

// AllowRetry reports whether a retry may start now. When it returns true
// the retry is counted in flight until RetryDone.
func (b *Budget) AllowRetry() bool {
	allowed := b.percent / 100 * float64(b.active.Load())
	for {
		r := b.retries.Load()
		if float64(r+1) > allowed {
			break
		}
		if b.retries.CompareAndSwap(r, r+1) {
			return true
		}
	}
	if b.takeFloorToken() {
		b.retries.Add(1)
		return true
	}
	return false
}

// takeFloorToken takes a token from the min_retries_per_second bucket.
func (b *Budget) takeFloorToken() bool {
	if b.minPerSecond <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if elapsed := now.Sub(b.lastFill); elapsed > 0 {
		b.tokens = min(b.minPerSecond, b.tokens+elapsed.Seconds()*b.minPerSecond)
		b.lastFill = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// RetryDone records that a retry admitted by AllowRetry finished.
func (b *Budget) RetryDone() { b.retries.Add(-1) }

// Active returns the number of active requests and retries in flight.
func (b *Budget) Active() (requests, retries int64) {
	return b.active.Load(), b.retries.Load()
}
