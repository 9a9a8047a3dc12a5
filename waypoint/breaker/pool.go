package breaker

import (
	"context"
	"errors"
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

// Pool enforces a backend's ConnectionPool limits. Zero limits are
// unlimited. A Pool is safe for concurrent use.
type Pool struct {
	maxConns   int64
	maxPending int64
	maxReqs    int64

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

// NewPool returns a Pool for cp; a nil cp is unlimited. With max_requests
// set, requests beyond it wait in a FIFO queue of at most
// max_pending_requests (0 = unbounded) until a slot frees or their context
// ends.
func NewPool(cp *l7api.ConnectionPool) *Pool {
	p := &Pool{
		maxConns:   int64(cp.GetMaxConnections()),
		maxPending: int64(cp.GetMaxPendingRequests()),
		maxReqs:    int64(cp.GetMaxRequests()),
	}
	p.releaseReq = p.release
	p.releaseConn = p.releaseConnection
	p.overflowPending = &OverflowError{Limit: MaxPendingRequests, Max: cp.GetMaxPendingRequests()}
	p.overflowConns = &OverflowError{Limit: MaxConnections, Max: cp.GetMaxConnections()}
	p.overflowReqs = &OverflowError{Limit: MaxRequests, Max: cp.GetMaxRequests()}
	return p
}

// Acquire takes a request slot, waiting in the pending queue while
// max_requests are active. It returns a *OverflowError (MaxPendingRequests)
// at once when the queue is full, and ctx's error, wrapped, when ctx ends
// while waiting. On success the caller must call release exactly once when
// the request ends; release does not allocate.
func (p *Pool) Acquire(ctx context.Context) (release func(), err error) {
	// TODO(WP-RESIL): implement.
	return p.releaseReq, nil
}

// AcquireConn takes a connection slot without waiting: the upstream pool
// calls it before opening a connection to the backend and gets a
// *OverflowError (MaxConnections) when max_connections are open. On
// success the caller must call release exactly once when the connection
// closes.
func (p *Pool) AcquireConn() (release func(), err error) {
	// TODO(WP-RESIL): implement.
	return p.releaseConn, nil
}

// Stats returns the open connections, active requests and waiting
// requests.
func (p *Pool) Stats() (conns, active, pending int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns, p.active, int64(p.waiters.len())
}

func (p *Pool) release() {
	// TODO(WP-RESIL): implement.
}

func (p *Pool) releaseConnection() {
	// TODO(WP-RESIL): implement.
}

// waitQueue is a FIFO of waiting requests.
type waitQueue struct{ items []*waiter }

type waiter struct {
	ready chan struct{} // closed when the slot is handed over
}

func (q *waitQueue) len() int { return len(q.items) }
