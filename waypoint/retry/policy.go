package retry

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// Defaults applied by New for fields left zero.
const (
	// DefaultBackoff is the base back-off when the policy gives none
	// (Envoy's default).
	DefaultBackoff = 25 * time.Millisecond
	// MaxBackoffFactor caps the back-off at this multiple of its base.
	MaxBackoffFactor = 10
	// DefaultBudgetPercent is the retry budget when budget_percent is 0.
	DefaultBudgetPercent = 20.0
	// DefaultMinRetriesPerSecond is the budget's floor when
	// min_retries_per_second is 0.
	DefaultMinRetriesPerSecond = 10
)

// Conditions accepted in RetryPolicy.retry_on.
const (
	On5xx                  = "5xx"                    // any 5xx response, resets and connect failures
	OnGatewayError         = "gateway-error"          // 502, 503, 504
	OnReset                = "reset"                  // the upstream reset or closed the stream or timed out
	OnConnectFailure       = "connect-failure"        // no connection to the endpoint could be made
	OnRetriableStatusCodes = "retriable-status-codes" // the statuses in codes (503 when codes is empty)
	// gRPC conditions, matched on the response's grpc-status by ShouldRetryGRPC.
	OnCancelled         = "cancelled"
	OnDeadlineExceeded  = "deadline-exceeded"
	OnInternal          = "internal"
	OnResourceExhausted = "resource-exhausted"
	OnUnavailable       = "unavailable"
)

// Rand returns a uniformly distributed float64 in [0, 1). An injected Rand
// must be safe for concurrent use if the Policy is used concurrently.
type Rand func() float64

// Option configures a Policy.
type Option func(*Policy)

// WithRand makes Backoff draw its jitter from rnd instead of math/rand/v2.
func WithRand(rnd Rand) Option { return func(p *Policy) { p.rnd = rnd } }

// Policy is a compiled l7api.RetryPolicy. It is immutable and safe for
// concurrent use. The zero Policy and a nil *Policy never retry.
type Policy struct {
	attempts      int
	perTryTimeout time.Duration
	backoff       time.Duration
	on            conditions
	codes         []int
	budgetPercent float64
	minPerSecond  uint32
	rnd           Rand
}

// conditions is a bit set of retry_on conditions.
type conditions uint32

const (
	cond5xx conditions = 1 << iota
	condGatewayError
	condReset
	condConnectFailure
	condRetriableStatusCodes
	condCancelled
	condDeadlineExceeded
	condInternal
	condResourceExhausted
	condUnavailable
)

var conditionNames = map[string]conditions{
	On5xx:                  cond5xx,
	OnGatewayError:         condGatewayError,
	OnReset:                condReset,
	OnConnectFailure:       condConnectFailure,
	OnRetriableStatusCodes: condRetriableStatusCodes,
	OnCancelled:            condCancelled,
	OnDeadlineExceeded:     condDeadlineExceeded,
	OnInternal:             condInternal,
	OnResourceExhausted:    condResourceExhausted,
	OnUnavailable:          condUnavailable,
}

// New compiles rp. A nil rp or zero attempts gives a Policy that never
// retries. When retry_on is empty the policy retries on connect-failure,
// reset and retriable-status-codes; codes, when given, are always
// retriable; retriable-status-codes with no codes means 503. New fails,
// naming the field, on an unknown retry_on condition or a status code
// outside 100-599.
func New(rp *l7api.RetryPolicy, opts ...Option) (*Policy, error) {
	p := &Policy{
		attempts:      int(rp.GetAttempts()),
		perTryTimeout: rp.GetPerTryTimeout().AsDuration(),
		backoff:       rp.GetBackoff().AsDuration(),
		budgetPercent: rp.GetBudgetPercent(),
		minPerSecond:  rp.GetMinRetriesPerSecond(),
		rnd:           rand.Float64,
	}
	for i, name := range rp.GetRetryOn() {
		c, ok := conditionNames[name]
		if !ok {
			return nil, fmt.Errorf("retry: retry_on[%d]: unknown condition %q", i, name)
		}
		p.on |= c
	}
	if len(rp.GetRetryOn()) == 0 {
		p.on = condConnectFailure | condReset | condRetriableStatusCodes
	}
	for i, c := range rp.GetCodes() {
		if c < 100 || c > 599 {
			return nil, fmt.Errorf("retry: codes[%d]: %d is not an HTTP status", i, c)
		}
		p.codes = append(p.codes, int(c))
	}
	if len(p.codes) > 0 {
		p.on |= condRetriableStatusCodes
	} else if p.on&condRetriableStatusCodes != 0 {
		p.codes = []int{503}
	}
	if p.backoff <= 0 {
		p.backoff = DefaultBackoff
	}
	if !(p.budgetPercent > 0) {
		p.budgetPercent = DefaultBudgetPercent
	}
	if p.minPerSecond == 0 {
		p.minPerSecond = DefaultMinRetriesPerSecond
	}
	for _, o := range opts {
		o(p)
	}
	return p, nil
}

// Attempts returns the number of retries allowed after the first try.
func (p *Policy) Attempts() int {
	if p == nil {
		return 0
	}
	return p.attempts
}

// PerTryTimeout returns the bound on each attempt; 0 means none (the
// route's backend_request timeout, if any, applies instead).
func (p *Policy) PerTryTimeout() time.Duration {
	if p == nil {
		return 0
	}
	return p.perTryTimeout
}

// ShouldRetry reports whether the attempt that just finished should be
// followed by another. attempt is the 1-based number of that attempt (1
// after the first try); no retry follows attempt Attempts()+1. When err is
// non-nil the attempt failed without a usable response and status is
// ignored; err is classified with Classify. When err is nil, status is the
// response's HTTP status.
//
// ShouldRetry does not consult the Budget, the request's overall deadline
// or whether the body can be replayed; the caller checks those too.
func (p *Policy) ShouldRetry(attempt int, status int, err error) bool {
	if p == nil || attempt < 1 || attempt > p.attempts {
		return false
	}
	if err != nil {
		// As Envoy: 5xx and gateway-error cover every failure without a
		// response; connect-failure only the failure to connect.
		switch Classify(err) {
		case KindConnectFailure:
			return p.on&(cond5xx|condGatewayError|condReset|condConnectFailure) != 0
		case KindReset, KindTimeout:
			return p.on&(cond5xx|condGatewayError|condReset) != 0
		}
		return false
	}
	switch {
	case status >= 500 && status <= 599 && p.on&cond5xx != 0:
		return true
	case (status == 502 || status == 503 || status == 504) && p.on&condGatewayError != 0:
		return true
	case p.on&condRetriableStatusCodes != 0:
		for _, c := range p.codes {
			if c == status {
				return true
			}
		}
	}
	return false
}

// ShouldRetryGRPC is ShouldRetry for a gRPC response whose grpc-status
// (from headers or a trailers-only response) is code: it retries when the
// matching gRPC condition (cancelled=1, deadline-exceeded=4,
// resource-exhausted=8, internal=13, unavailable=14) is in retry_on.
func (p *Policy) ShouldRetryGRPC(attempt int, code int) bool {
	if p == nil || attempt < 1 || attempt > p.attempts {
		return false
	}
	var c conditions
	switch code {
	case 1:
		c = condCancelled
	case 4:
		c = condDeadlineExceeded
	case 8:
		c = condResourceExhausted
	case 13:
		c = condInternal
	case 14:
		c = condUnavailable
	}
	return p.on&c != 0
}

// Backoff returns how long to wait before retry number attempt (1 for the
// first retry): base×2^(attempt-1), capped at MaxBackoffFactor×base, with
// jitter drawn uniformly from the upper half [d/2, d].
func (p *Policy) Backoff(attempt int) time.Duration {
	if p == nil {
		return 0
	}
	limit := p.backoff * MaxBackoffFactor
	d := p.backoff
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	rnd := p.rnd
	if rnd == nil { // the zero Policy
		rnd = rand.Float64
	}
	return half + time.Duration(rnd()*float64(d-half))
}

// NewBudget returns a Budget with this policy's budget_percent and
// min_retries_per_second (after defaults). Keep one Budget per backend.
func (p *Policy) NewBudget(opts ...BudgetOption) *Budget {
	if p == nil {
		return NewBudget(DefaultBudgetPercent, DefaultMinRetriesPerSecond, opts...)
	}
	return NewBudget(p.budgetPercent, p.minPerSecond, opts...)
}
