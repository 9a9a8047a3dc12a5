package breaker

import (
	"net/netip"
	"sync"
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
// passed; each interval it then stays un-ejected, its ejection count
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
}

type endpointState struct {
	// TODO(WP-RESIL): fields.
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
// Until it is called, the endpoints seen in Report are the base.
func (o *Outliers) SetEndpoints(eps []netip.AddrPort) {
	// TODO(WP-RESIL): implement.
}

// Report records the outcome of one request to ep: status is the HTTP
// status when err is nil; a non-nil err (connect failure, reset, timeout)
// counts as both a 5xx and a gateway error. Any other outcome resets ep's
// consecutive counts.
func (o *Outliers) Report(ep netip.AddrPort, status int, err error) {
	// TODO(WP-RESIL): implement.
}

// Ejected reports whether ep is ejected now. It is meant as the balancer's
// skip predicate and does not allocate.
func (o *Outliers) Ejected(ep netip.AddrPort) bool {
	// TODO(WP-RESIL): implement.
	return false
}

// EjectedCount returns the number of endpoints ejected now.
func (o *Outliers) EjectedCount() int {
	// TODO(WP-RESIL): implement.
	return 0
}
