package breaker

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// Defaults applied by NewOutliers for fields left zero.
const (
	DefaultBaseEjectionTime   = 30 * time.Second
	DefaultInterval           = 10 * time.Second
	DefaultMaxEjectionPercent = 10
	// MaxEjectionTime caps an ejection however often the endpoint was
	// ejected before (Envoy's default max_ejection_time), unless the base
	// ejection time is longer.
	MaxEjectionTime = 300 * time.Second
)

// OutlierOption configures Outliers.
type OutlierOption func(*Outliers)

// WithClock makes Outliers read time from now instead of time.Now. now must
// be safe for concurrent use.
func WithClock(now func() time.Time) OutlierOption { return func(o *Outliers) { o.now = now } }

// Outliers tracks consecutive errors per endpoint of one backend and
// ejects an endpoint when consecutive_5xx_errors (any 5xx or error) or
// consecutive_gateway_errors (502, 503, 504 or error) in a row are
// reported; a zero threshold disables that count. An endpoint is ejected
// for base_ejection_time × the number of times it has been ejected
// (capped at MaxEjectionTime) and returns by itself when that time has
// passed; for each interval it then stays un-ejected, its ejection count
// decreases by one. At most max_ejection_percent of the known endpoints
// are ejected at once, but at least one may always be. Outliers is safe
// for concurrent use; a nil *Outliers ejects nothing.
type Outliers struct {
	consec5xx     uint32
	consecGateway uint32
	base          time.Duration
	interval      time.Duration
	maxPercent    uint32
	now           func() time.Time

	mu        sync.RWMutex
	endpoints map[netip.AddrPort]*endpointState
	total     int  // endpoint count given to SetEndpoints
	totalSet  bool // SetEndpoints was called
}

type endpointState struct {
	// ejectedUntil is the end of the current ejection in Unix
	// nanoseconds, or 0. It is written under both locks and read without.
	ejectedUntil atomic.Int64

	mu           sync.Mutex // guards the fields below
	consec5xx    uint32
	consecGw     uint32
	timesEjected uint32
	calmSince    int64 // when timesEjected last stopped growing or decayed
}

// NewOutliers returns Outliers for od. A nil od returns nil, which ejects
// nothing.
func NewOutliers(od *l7api.OutlierDetection, opts ...OutlierOption) *Outliers {
	if od == nil {
		return nil
	}
	o := &Outliers{
		consec5xx:     od.GetConsecutive_5XxErrors(),
		consecGateway: od.GetConsecutiveGatewayErrors(),
		base:          od.GetBaseEjectionTime().AsDuration(),
		interval:      od.GetInterval().AsDuration(),
		maxPercent:    od.GetMaxEjectionPercent(),
		now:           time.Now,
		endpoints:     make(map[netip.AddrPort]*endpointState),
	}
	if o.base <= 0 {
		o.base = DefaultBaseEjectionTime
	}
	if o.interval <= 0 {
		o.interval = DefaultInterval
	}
	if o.maxPercent == 0 {
		o.maxPercent = DefaultMaxEjectionPercent
	}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// SetEndpoints tells Outliers the backend's current endpoints: the base of
// max_ejection_percent. State of endpoints no longer listed is dropped.
// Until it is called, the base is the endpoints that have reported errors,
// which ejects fewer; the proxy should call it whenever the backend's
// endpoints change.
func (o *Outliers) SetEndpoints(eps []netip.AddrPort) {
	if o == nil {
		return
	}
	keep := make(map[netip.AddrPort]struct{}, len(eps))
	for _, ep := range eps {
		keep[ep] = struct{}{}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for ep := range o.endpoints {
		if _, ok := keep[ep]; !ok {
			delete(o.endpoints, ep)
		}
	}
	o.total = len(keep)
	o.totalSet = true
}

// Report records the outcome of one request to ep: status is the HTTP
// status when err is nil; a non-nil err (connect failure, reset, timeout)
// counts as both a 5xx and a gateway error. A 5xx other than 502-504
// resets the gateway count; any other outcome resets both. Errors that are
// not the endpoint's doing are ignored: an *OverflowError (a local limit)
// and context.Canceled (the client went away). Outcomes reported while ep
// is ejected (requests that were in flight) are ignored too.
func (o *Outliers) Report(ep netip.AddrPort, status int, err error) {
	if o == nil {
		return
	}
	if err != nil && (errors.Is(err, ErrOverflow) || errors.Is(err, context.Canceled)) {
		return
	}
	is5xx := err != nil || (status >= 500 && status <= 599)
	isGw := err != nil || status == 502 || status == 503 || status == 504
	st := o.state(ep, is5xx)
	if st == nil {
		return // a success for an endpoint without state: nothing to reset
	}
	now := o.now().UnixNano()
	st.mu.Lock()
	ejected := o.settle(st, now)
	if ejected {
		st.mu.Unlock()
		return
	}
	if !is5xx {
		st.consec5xx, st.consecGw = 0, 0
		st.mu.Unlock()
		return
	}
	st.consec5xx++
	if isGw {
		st.consecGw++
	} else {
		st.consecGw = 0
	}
	trip := o.tripped(st)
	st.mu.Unlock()
	if trip {
		o.eject(st, now)
	}
}

// Ejected reports whether ep is ejected now. It is meant as the balancer's
// skip predicate and does not allocate.
func (o *Outliers) Ejected(ep netip.AddrPort) bool {
	if o == nil {
		return false
	}
	o.mu.RLock()
	st := o.endpoints[ep]
	o.mu.RUnlock()
	if st == nil {
		return false
	}
	until := st.ejectedUntil.Load()
	return until != 0 && o.now().UnixNano() < until
}

// EjectedCount returns the number of endpoints ejected now.
func (o *Outliers) EjectedCount() int {
	if o == nil {
		return 0
	}
	now := o.now().UnixNano()
	o.mu.RLock()
	defer o.mu.RUnlock()
	return o.ejectedLocked(now)
}

// state returns ep's state, creating it when create is set.
func (o *Outliers) state(ep netip.AddrPort, create bool) *endpointState {
	o.mu.RLock()
	st := o.endpoints[ep]
	o.mu.RUnlock()
	if st != nil || !create {
		return st
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if st = o.endpoints[ep]; st == nil {
		st = &endpointState{}
		o.endpoints[ep] = st
	}
	return st
}

// settle ends an ejection whose time has passed and decays the ejection
// count by one per interval spent un-ejected since. It reports whether st
// is still ejected. st.mu must be held.
func (o *Outliers) settle(st *endpointState, now int64) bool {
	if until := st.ejectedUntil.Load(); until != 0 {
		if now < until {
			return true
		}
		st.ejectedUntil.Store(0)
		st.calmSince = until
	}
	if st.timesEjected > 0 {
		if n := (now - st.calmSince) / int64(o.interval); n > 0 {
			st.timesEjected -= uint32(min(n, int64(st.timesEjected)))
			st.calmSince += n * int64(o.interval)
		}
	}
	return false
}

// tripped reports whether st's counts reach a threshold. st.mu must be
// held.
func (o *Outliers) tripped(st *endpointState) bool {
	return (o.consec5xx > 0 && st.consec5xx >= o.consec5xx) ||
		(o.consecGateway > 0 && st.consecGw >= o.consecGateway)
}

// eject ejects st unless that would exceed max_ejection_percent.
func (o *Outliers) eject(st *endpointState, now int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if o.settle(st, now) || !o.tripped(st) {
		return // a concurrent Report got here first
	}
	st.consec5xx, st.consecGw = 0, 0
	total := len(o.endpoints)
	if o.totalSet {
		total = o.total
	}
	allowed := max(total*int(o.maxPercent)/100, 1)
	if o.ejectedLocked(now) >= allowed {
		return
	}
	st.timesEjected++
	st.calmSince = now
	d := min(o.base*time.Duration(st.timesEjected), max(MaxEjectionTime, o.base))
	st.ejectedUntil.Store(now + int64(d))
}

// ejectedLocked counts endpoints ejected at now. o.mu must be held.
func (o *Outliers) ejectedLocked(now int64) int {
	n := 0
	for _, st := range o.endpoints {
		if until := st.ejectedUntil.Load(); until != 0 && now < until {
			n++
		}
	}
	return n
}
