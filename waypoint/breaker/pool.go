package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// Limit names the ConnectionPool limit that turned a request away.
type Limit int

// Limits of a Pool.
const (
	MaxConnections Limit = iota + 1
	MaxPendingRequests
	MaxRequests
)

// String returns the limit's field name, for metrics and logs.
func (l Limit) String() string {
	switch l {
	case MaxConnections:
		return "max_connections"
	case MaxPendingRequests:
		return "max_pending_requests"
	case MaxRequests:
		return "max_requests"
	}
	return "unknown"
}

// ErrOverflow matches every *OverflowError with errors.Is.
var ErrOverflow = errors.New("circuit breaker overflow")

// OverflowError says that a Pool limit was reached. The proxy answers such
// requests with 503 and counts them by Limit.
type OverflowError struct {
	Limit Limit
	Max   uint32 // the configured value of Limit
}

// Error implements error.
func (e *OverflowError) Error() string {
	return "circuit breaker overflow: " + e.Limit.String() + " reached"
}

// Is makes errors.Is(err, ErrOverflow) true.
func (e *OverflowError) Is(target error) bool { return target == ErrOverflow }

// Pool enforces a backend's ConnectionPool limits, as Envoy's circuit
// breakers do. Zero limits are unlimited.
//
//   - max_requests bounds active requests; beyond it Acquire fails at once
//     with MaxRequests.
//   - max_connections bounds connections. For a multiplexed upstream (the
//     default) the upstream pool calls AcquireConn before dialing and, on
//     MaxConnections, reuses a connection it has. With
//     WithOneRequestPerConnection (HTTP/1.1 upstreams: every active
//     request holds a connection) Acquire enforces it instead: requests
//     beyond it wait in a FIFO queue.
//   - max_pending_requests bounds that queue; beyond it Acquire fails at
//     once with MaxPendingRequests. A waiting request leaves the queue when
//     its context ends.
//
// A Pool is safe for concurrent use.
type Pool struct {
	maxConns   int64
	maxPending int64
	maxReqs    int64
	connGate   int64 // limit on active requests that queues; 0 = none

	mu      sync.Mutex
	conns   int64
	active  int64
	waiters waitQueue

	releaseReq  func() // preallocated, returned by Acquire
	releaseConn func() // preallocated, returned by AcquireConn

	overflowPending *OverflowError
	overflowConns   *OverflowError
	overflowReqs    *OverflowError
}

// PoolOption configures a Pool.
type PoolOption func(*Pool)

// WithOneRequestPerConnection declares that each active request to the
// backend holds a connection of its own (HTTP/1.1), so that
// max_connections limits active requests and the excess waits in the
// pending queue.
func WithOneRequestPerConnection() PoolOption {
	return func(p *Pool) { p.connGate = p.maxConns }
}

// NewPool returns a Pool for cp; a nil cp is unlimited.
func NewPool(cp *l7api.ConnectionPool, opts ...PoolOption) *Pool {
	p := &Pool{
		maxConns:   int64(cp.GetMaxConnections()),
		maxPending: int64(cp.GetMaxPendingRequests()),
		maxReqs:    int64(cp.GetMaxRequests()),
	}
	for _, o := range opts {
		o(p)
	}
	p.releaseReq = p.release
	p.releaseConn = p.releaseConnection
	p.overflowPending = &OverflowError{Limit: MaxPendingRequests, Max: cp.GetMaxPendingRequests()}
	p.overflowConns = &OverflowError{Limit: MaxConnections, Max: cp.GetMaxConnections()}
	p.overflowReqs = &OverflowError{Limit: MaxRequests, Max: cp.GetMaxRequests()}
	return p
}

// Acquire takes a request slot. It returns a *OverflowError at once when
// max_requests are active or the pending queue is full, and ctx's error,
// wrapped, when ctx ends while the request waits in the queue. On success
// the caller must call release exactly once when the request ends;
// neither Acquire's fast path nor release allocates.
func (p *Pool) Acquire(ctx context.Context) (release func(), err error) {
	p.mu.Lock()
	if p.maxReqs > 0 && p.active >= p.maxReqs {
		p.mu.Unlock()
		return nil, p.overflowReqs
	}
	if p.connGate == 0 || (p.active < p.connGate && p.waiters.len() == 0) {
		p.active++
		p.mu.Unlock()
		return p.releaseReq, nil
	}
	if p.maxPending > 0 && int64(p.waiters.len()) >= p.maxPending {
		p.mu.Unlock()
		return nil, p.overflowPending
	}
	if err := ctx.Err(); err != nil {
		p.mu.Unlock()
		return nil, fmt.Errorf("wait for a request slot: %w", err)
	}
	w := &waiter{ready: make(chan struct{})}
	p.waiters.push(w)
	p.mu.Unlock()

	select {
	case <-w.ready:
		return p.releaseReq, nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	removed := p.waiters.remove(w)
	p.mu.Unlock()
	if !removed {
		// The slot was handed over as ctx ended: pass it on.
		p.release()
	}
	return nil, fmt.Errorf("wait for a request slot: %w", ctx.Err())
}

// AcquireConn takes a connection slot without waiting: the upstream pool
// calls it before opening a connection to the backend and gets a
// *OverflowError (MaxConnections) when max_connections are open. On
// success the caller must call release exactly once when the connection
// closes. With WithOneRequestPerConnection, Acquire already limits
// connections and AcquireConn need not be called.
func (p *Pool) AcquireConn() (release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.maxConns > 0 && p.conns >= p.maxConns {
		return nil, p.overflowConns
	}
	p.conns++
	return p.releaseConn, nil
}

// Stats returns the open connections, active requests and waiting
// requests.
func (p *Pool) Stats() (conns, active, pending int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns, p.active, int64(p.waiters.len())
}

// release ends a request: its slot goes to the first waiter, if any.
func (p *Pool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.waiters.pop(); w != nil {
		close(w.ready) // the slot passes on; active is unchanged
		return
	}
	if p.active > 0 {
		p.active--
	}
}

func (p *Pool) releaseConnection() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns > 0 {
		p.conns--
	}
}

// waitQueue is a FIFO of waiting requests.
type waitQueue struct {
	items []*waiter
	head  int
}

type waiter struct {
	ready chan struct{} // closed when the slot is handed over
}

func (q *waitQueue) len() int { return len(q.items) - q.head }

func (q *waitQueue) push(w *waiter) {
	if q.head > 0 && q.head == len(q.items) {
		clear(q.items)
		q.items, q.head = q.items[:0], 0
	}
	q.items = append(q.items, w)
}

// pop removes and returns the first waiter, or nil.
func (q *waitQueue) pop() *waiter {
	if q.len() == 0 {
		return nil
	}
	w := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head > 64 && q.head*2 >= len(q.items) { // compact
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return w
}

// remove removes w, reporting whether it was still waiting.
func (q *waitQueue) remove(w *waiter) bool {
	for i := q.head; i < len(q.items); i++ {
		if q.items[i] == w {
			copy(q.items[i:], q.items[i+1:])
			q.items[len(q.items)-1] = nil
			q.items = q.items[:len(q.items)-1]
			return true
		}
	}
	return false
}
