package ratelimit

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// DefaultMaxKeys bounds the number of per-source buckets a Limiter keeps
// when WithMaxKeys is not given.
const DefaultMaxKeys = 10000

// Option configures a Limiter.
type Option func(*options)

type options struct {
	now     func() time.Time
	maxKeys int
}

// WithClock makes the Limiter read time from now instead of time.Now.
// now must be safe for concurrent use.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMaxKeys bounds the number of per-source buckets kept (minimum 1).
// When a new key arrives at the bound the least recently used bucket is
// forgotten; a forgotten key starts again with a full bucket.
func WithMaxKeys(n int) Option { return func(o *options) { o.maxKeys = max(n, 1) } }

// Limiter is the set of token buckets for one route's RateLimit. Each
// bucket starts full with max_tokens, gains tokens_per_fill tokens every
// fill_interval (counted from the bucket's creation) up to max_tokens, and
// each allowed request takes one token. A Limiter is safe for concurrent
// use.
type Limiter struct {
	perSource bool
	cfg       bucketConfig
	now       func() time.Time

	route struct { // the single bucket of a per-route Limiter
		mu sync.Mutex
		b  bucket
	}
	keys *lru // per-source buckets; nil for a per-route Limiter
}

// New returns a Limiter for rl. It fails, naming the field, when rl is nil,
// max_tokens is 0 or fill_interval is not positive. A tokens_per_fill of
// 0 means 1.
func New(rl *l7api.RateLimit, opts ...Option) (*Limiter, error) {
	if rl == nil {
		return nil, errors.New("rate limit: missing")
	}
	if rl.GetMaxTokens() == 0 {
		return nil, errors.New("rate limit: max_tokens: must be positive")
	}
	interval := rl.GetFillInterval().AsDuration()
	if interval <= 0 {
		return nil, fmt.Errorf("rate limit: fill_interval: must be positive, got %v", interval)
	}
	o := options{now: time.Now, maxKeys: DefaultMaxKeys}
	for _, opt := range opts {
		opt(&o)
	}
	l := &Limiter{
		perSource: rl.GetKey() == l7api.RateLimit_SOURCE,
		cfg: bucketConfig{
			max:      int64(rl.GetMaxTokens()),
			perFill:  int64(max(rl.GetTokensPerFill(), 1)),
			interval: interval,
		},
		now: o.now,
	}
	if l.perSource {
		l.keys = newLRU(o.maxKeys)
	} else {
		l.route.b = l.cfg.full(o.now())
	}
	return l, nil
}

// KeyFor returns the key that Allow expects for a request from source
// (the client's SPIFFE identity): source for a per-source Limiter and ""
// for a per-route one. It does not allocate.
func (l *Limiter) KeyFor(source string) string {
	if l != nil && l.perSource {
		return source
	}
	return ""
}

// Allow takes one token from key's bucket. It returns ok when a token was
// available; otherwise retryAfter is the time until the bucket's next
// refill (always positive). A per-route Limiter ignores key. A nil
// *Limiter (no rate limit) allows everything.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	if !l.perSource {
		l.route.mu.Lock()
		ok, retryAfter = l.route.b.take(&l.cfg, now)
		l.route.mu.Unlock()
		return ok, retryAfter
	}
	return l.keys.take(key, &l.cfg, now)
}

// Len returns the number of buckets held: 1 for a per-route Limiter, 0
// for a nil one.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	if !l.perSource {
		return 1
	}
	return l.keys.len()
}

// RetryAfterSeconds renders d as the value of a retry-after header: whole
// seconds, rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
