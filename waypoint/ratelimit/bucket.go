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
// Refills keep their phase: they happen at lastFill + k×interval whether or
// not the bucket was full, as with Envoy's periodic refill timer.
func (b *bucket) take(c *bucketConfig, now time.Time) (bool, time.Duration) {
	if elapsed := now.Sub(b.lastFill); elapsed >= c.interval {
		fills := int64(elapsed / c.interval)
		if missing := c.max - b.tokens; fills >= (missing+c.perFill-1)/c.perFill {
			b.tokens = c.max
		} else {
			b.tokens += fills * c.perFill
		}
		b.lastFill = b.lastFill.Add(time.Duration(fills) * c.interval)
	}
	if b.tokens > 0 {
		b.tokens--
		return true, 0
	}
	wait := b.lastFill.Add(c.interval).Sub(now)
	return false, min(max(wait, time.Nanosecond), c.interval)
}
