package ratelimit

import "time"

// bucketConfig is the refill rule shared by every bucket of a Limiter.
type bucketConfig struct {
	max      int64
	perFill  int64
	interval time.Duration
}

// bucket is one token bucket. It is not safe for concurrent use; its owner
// holds a lock.
type bucket struct {
	tokens   int64
	lastFill time.Time // refills happen at lastFill + k*interval
}

func (c *bucketConfig) full(now time.Time) bucket {
	return bucket{tokens: c.max, lastFill: now}
}

// take refills b for the intervals elapsed by now and takes one token.
func (b *bucket) take(c *bucketConfig, now time.Time) (bool, time.Duration) {
	// TODO(WP-RESIL): implement.
	return true, 0
}
