package balance

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// Done reports the end of a request sent to a picked endpoint: rtt is the
// time from sending the request to its response headers (or to the
// failure), err the failure if any. It must be called exactly once per
// Pick; it is safe to call from any goroutine.
type Done func(rtt time.Duration, err error)

// Balancer picks an endpoint for each request. Implementations are safe
// for concurrent use.
type Balancer interface {
	// Pick returns one of endpoints and the Done to call when the request
	// ends. Endpoints the skip predicate rejects are not picked unless all
	// are rejected, in which case any may be (panic mode, as Envoy). With
	// no endpoints it returns the zero AddrPort (IsValid false) and a
	// no-op Done. Pick does not retain or modify endpoints.
	Pick(endpoints []netip.AddrPort) (netip.AddrPort, Done)
}

// Defaults of the peak-EWMA balancer.
const (
	// DefaultDecay is the time constant with which an endpoint's latency
	// estimate decays (Finagle's and Linkerd's default).
	DefaultDecay = 10 * time.Second
	// DefaultRTT is the latency assumed for an endpoint not yet measured.
	DefaultRTT = 10 * time.Millisecond
	// FailurePenalty is the least latency recorded for a failed request,
	// so that an endpoint failing fast does not look fast.
	FailurePenalty = time.Second
)

// Option configures a Balancer.
type Option func(*options)

type options struct {
	now    func() time.Time
	intn   func(n int) int
	skip   func(netip.AddrPort) bool
	decay  time.Duration
	defRTT time.Duration
}

func defaultOptions() options {
	return options{now: time.Now, intn: rand.IntN, decay: DefaultDecay, defRTT: DefaultRTT}
}

// WithClock makes the balancer read time from now instead of time.Now. now
// must be safe for concurrent use.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRand makes the balancer draw from intn, which returns a uniform int
// in [0, n), instead of math/rand/v2. intn must be safe for concurrent use
// if Pick is called concurrently.
func WithRand(intn func(n int) int) Option { return func(o *options) { o.intn = intn } }

// WithSkip makes the balancer avoid endpoints for which skip returns true,
// typically (*breaker.Outliers).Ejected. skip must be safe for concurrent
// use and fast: Pick calls it for the candidates it considers.
func WithSkip(skip func(netip.AddrPort) bool) Option { return func(o *options) { o.skip = skip } }

// WithDecay sets the peak-EWMA time constant (default DefaultDecay).
func WithDecay(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.decay = d
		}
	}
}

// WithDefaultRTT sets the latency assumed for unmeasured endpoints (default
// DefaultRTT).
func WithDefaultRTT(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.defRTT = d
		}
	}
}

// New returns the balancer lb asks for; a nil lb means PEAK_EWMA. Keep one
// Balancer per backend: balancers hold per-endpoint state.
func New(lb *l7api.LoadBalancer, opts ...Option) Balancer {
	switch lb.GetPolicy() {
	case l7api.LoadBalancer_ROUND_ROBIN:
		return NewRoundRobin(opts...)
	case l7api.LoadBalancer_LEAST_REQUEST:
		return NewLeastRequest(opts...)
	case l7api.LoadBalancer_RANDOM:
		return NewRandom(opts...)
	default:
		return NewPeakEWMA(opts...)
	}
}

func noopDone(time.Duration, error) {}
