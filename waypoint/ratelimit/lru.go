package ratelimit

import (
	"sync"
	"time"
)

// lru holds per-key buckets, at most capacity of them, forgetting the
// least recently used one when full. It is safe for concurrent use.
type lru struct {
	mu       sync.Mutex
	capacity int
	entries  map[string]*entry
}

type entry struct {
	key        string
	b          bucket
	prev, next *entry
}

func newLRU(capacity int) *lru {
	return &lru{capacity: capacity, entries: make(map[string]*entry)}
}

func (l *lru) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

func (l *lru) take(key string, c *bucketConfig, now time.Time) (bool, time.Duration) {
	// TODO(WP-RESIL): implement.
	return true, 0
}
