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
	root     entry // sentinel: root.next is the most recently used
}

type entry struct {
	key        string
	b          bucket
	prev, next *entry
}

func newLRU(capacity int) *lru {
	l := &lru{capacity: capacity, entries: make(map[string]*entry, min(capacity, 1024))}
	l.root.prev, l.root.next = &l.root, &l.root
	return l
}

func (l *lru) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// take takes a token from key's bucket, creating a full bucket for a new
// key and forgetting the least recently used key when at capacity.
func (l *lru) take(key string, c *bucketConfig, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[key]
	switch {
	case e != nil:
		l.unlink(e)
	case len(l.entries) >= l.capacity:
		e = l.root.prev // least recently used; reuse its memory
		l.unlink(e)
		delete(l.entries, e.key)
		e.key, e.b = key, c.full(now)
		l.entries[key] = e
	default:
		e = &entry{key: key, b: c.full(now)}
		l.entries[key] = e
	}
	l.pushFront(e)
	return e.b.take(c, now)
}

func (l *lru) unlink(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (l *lru) pushFront(e *entry) {
	e.prev, e.next = &l.root, l.root.next
	l.root.next.prev = e
	l.root.next = e
}
