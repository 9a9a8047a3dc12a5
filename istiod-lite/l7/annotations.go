package l7

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Route annotations (on an HTTPRoute or GRPCRoute; they apply to every rule
// of the route). docs/waypoint-config.md is their reference.
const (
	// AnnotationFaultAbort aborts a percentage of requests with a status:
	// "<percent>%:<status>", e.g. "50%:503".
	AnnotationFaultAbort = "weft.dev/fault-abort"
	// AnnotationFaultDelay delays a percentage of requests:
	// "<percent>%:<duration>", e.g. "10%:3s".
	AnnotationFaultDelay = "weft.dev/fault-delay"
	// AnnotationRateLimit is a local token bucket:
	// "<tokens>/<interval>[;burst=<n>][;key=route|source]", e.g.
	// "100/1s;burst=200;key=source".
	AnnotationRateLimit = "weft.dev/ratelimit"
	// AnnotationRetryAttempts is the number of retries after the first try,
	// e.g. "3" (rules[].retry.attempts wins when set).
	AnnotationRetryAttempts = "weft.dev/retry-attempts"
	// AnnotationRetryCodes lists retried status codes, e.g. "502,503"
	// (rules[].retry.codes wins when set).
	AnnotationRetryCodes = "weft.dev/retry-codes"
	// AnnotationRetryBackoff is the base of the jittered exponential
	// back-off, e.g. "25ms" (rules[].retry.backoff wins when set).
	AnnotationRetryBackoff = "weft.dev/retry-backoff"
	// AnnotationRetryOn lists retry conditions: any of 5xx, gateway-error,
	// reset, connect-failure, retriable-status-codes, e.g. "5xx,reset".
	AnnotationRetryOn = "weft.dev/retry-on"
	// AnnotationRetryPerTryTimeout bounds each attempt, e.g. "500ms".
	AnnotationRetryPerTryTimeout = "weft.dev/retry-per-try-timeout"
	// AnnotationRetryBudget caps retries to a percentage of active
	// requests, with a floor of retries per second: "<percent>%[;min=<n>]",
	// e.g. "20%;min=10".
	AnnotationRetryBudget = "weft.dev/retry-budget"
)

// AnnotationPrefix is the prefix of every Weft annotation; informers keep
// annotations with it.
const AnnotationPrefix = "weft.dev/"

// defaultRetryAttempts applies when a route configures retries without
// saying how many (Istio's default).
const defaultRetryAttempts = 2

// RetryConditions are the accepted weft.dev/retry-on values.
var RetryConditions = []string{"5xx", "gateway-error", "reset", "connect-failure", "retriable-status-codes"}

// routeExtras are the annotation-derived settings shared by every rule of
// a route.
type routeExtras struct {
	fault     *l7api.FaultInjection
	rateLimit *l7api.RateLimit
	retry     *l7api.RetryPolicy // nil when no retry annotation is set
}

// parseRouteAnnotations reads the weft.dev/* annotations; a malformed one
// rejects the route.
func parseRouteAnnotations(ann map[string]string, p *problems) routeExtras {
	var ex routeExtras
	field := func(k string) string { return "metadata.annotations[" + k + "]" }
	if v, ok := ann[AnnotationFaultAbort]; ok {
		pct, rest, err := parsePercentPair(v)
		var status int
		if err == nil {
			status, err = strconv.Atoi(rest)
			if err == nil && (status < 200 || status > 599) {
				err = fmt.Errorf("status %d is not in 200-599", status)
			}
		}
		if err != nil {
			p.reject(field(AnnotationFaultAbort), "want \"<percent>%%:<status>\" such as \"50%%:503\": %v", err)
		} else {
			ex.fault = &l7api.FaultInjection{AbortPercent: pct, AbortStatus: uint32(status)}
		}
	}
	if v, ok := ann[AnnotationFaultDelay]; ok {
		pct, rest, err := parsePercentPair(v)
		var d time.Duration
		if err == nil {
			d, err = parsePositiveDuration(rest)
		}
		if err != nil {
			p.reject(field(AnnotationFaultDelay), "want \"<percent>%%:<duration>\" such as \"10%%:3s\": %v", err)
		} else {
			if ex.fault == nil {
				ex.fault = &l7api.FaultInjection{}
			}
			ex.fault.DelayPercent, ex.fault.Delay = pct, durationpb.New(d)
		}
	}
	if v, ok := ann[AnnotationRateLimit]; ok {
		rl, err := parseRateLimit(v)
		if err != nil {
			p.reject(field(AnnotationRateLimit), "want \"<tokens>/<interval>[;burst=<n>][;key=route|source]\" such as \"100/1s;burst=200\": %v", err)
		} else {
			ex.rateLimit = rl
		}
	}
	ex.retry = parseRetryAnnotations(ann, p, field)
	return ex
}

func parseRetryAnnotations(ann map[string]string, p *problems, field func(string) string) *l7api.RetryPolicy {
	r := &l7api.RetryPolicy{}
	set := false
	if v, ok := ann[AnnotationRetryAttempts]; ok {
		set = true
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil || n > 100 {
			p.reject(field(AnnotationRetryAttempts), "want a number of retries from 0 to 100, got %q", v)
		}
		r.Attempts = uint32(n)
	} else {
		r.Attempts = defaultRetryAttempts
	}
	if v, ok := ann[AnnotationRetryCodes]; ok {
		set = true
		for _, s := range splitList(v, ",") {
			c, err := strconv.Atoi(s)
			if err != nil || c < 400 || c > 599 {
				p.reject(field(AnnotationRetryCodes), "want comma-separated status codes from 400 to 599, got %q", s)
				continue
			}
			r.Codes = append(r.Codes, uint32(c))
		}
	}
	if v, ok := ann[AnnotationRetryBackoff]; ok {
		set = true
		d, err := parsePositiveDuration(v)
		if err != nil {
			p.reject(field(AnnotationRetryBackoff), "want a duration such as \"25ms\": %v", err)
		} else {
			r.Backoff = durationpb.New(d)
		}
	}
	if v, ok := ann[AnnotationRetryOn]; ok {
		set = true
		for _, s := range splitList(v, ",") {
			if !contains(RetryConditions, s) {
				p.reject(field(AnnotationRetryOn), "unknown condition %q; want any of %s", s, strings.Join(RetryConditions, ", "))
				continue
			}
			r.RetryOn = append(r.RetryOn, s)
		}
	}
	if v, ok := ann[AnnotationRetryPerTryTimeout]; ok {
		set = true
		d, err := parsePositiveDuration(v)
		if err != nil {
			p.reject(field(AnnotationRetryPerTryTimeout), "want a duration such as \"500ms\": %v", err)
		} else {
			r.PerTryTimeout = durationpb.New(d)
		}
	}
	if v, ok := ann[AnnotationRetryBudget]; ok {
		set = true
		if err := parseRetryBudget(v, r); err != nil {
			p.reject(field(AnnotationRetryBudget), "want \"<percent>%%[;min=<retries per second>]\" such as \"20%%;min=10\": %v", err)
		}
	}
	if !set {
		return nil
	}
	return r
}

func parseRetryBudget(v string, r *l7api.RetryPolicy) error {
	parts := splitList(v, ";")
	if len(parts) == 0 {
		return fmt.Errorf("empty")
	}
	pct, err := parsePercent(parts[0])
	if err != nil {
		return err
	}
	r.BudgetPercent = pct
	for _, kv := range parts[1:] {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) != "min" {
			return fmt.Errorf("unknown option %q", kv)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 32)
		if err != nil {
			return fmt.Errorf("min: %q is not a whole number", val)
		}
		r.MinRetriesPerSecond = uint32(n)
	}
	return nil
}

func parseRateLimit(v string) (*l7api.RateLimit, error) {
	parts := splitList(v, ";")
	if len(parts) == 0 {
		return nil, fmt.Errorf("empty")
	}
	n, iv, ok := strings.Cut(parts[0], "/")
	if !ok {
		return nil, fmt.Errorf("%q has no \"/<interval>\"", parts[0])
	}
	tokens, err := strconv.ParseUint(strings.TrimSpace(n), 10, 32)
	if err != nil || tokens == 0 {
		return nil, fmt.Errorf("tokens %q is not a positive whole number", n)
	}
	d, err := parsePositiveDuration(iv)
	if err != nil {
		return nil, fmt.Errorf("interval: %w", err)
	}
	rl := &l7api.RateLimit{TokensPerFill: uint32(tokens), MaxTokens: uint32(tokens), FillInterval: durationpb.New(d)}
	for _, kv := range parts[1:] {
		k, val, ok := strings.Cut(kv, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		switch {
		case !ok:
			return nil, fmt.Errorf("option %q is not key=value", kv)
		case k == "burst":
			b, err := strconv.ParseUint(val, 10, 32)
			if err != nil || b == 0 {
				return nil, fmt.Errorf("burst %q is not a positive whole number", val)
			}
			rl.MaxTokens = uint32(b)
		case k == "key" && val == "route":
			rl.Key = l7api.RateLimit_ROUTE
		case k == "key" && val == "source":
			rl.Key = l7api.RateLimit_SOURCE
		case k == "key":
			return nil, fmt.Errorf("key %q is not route or source", val)
		default:
			return nil, fmt.Errorf("unknown option %q", k)
		}
	}
	return rl, nil
}

// parsePercentPair splits "<percent>%:<rest>".
func parsePercentPair(v string) (float64, string, error) {
	pct, rest, ok := strings.Cut(strings.TrimSpace(v), ":")
	if !ok {
		return 0, "", fmt.Errorf("missing \":\"")
	}
	p, err := parsePercent(pct)
	return p, strings.TrimSpace(rest), err
}

// parsePercent reads "12.5%" into 12.5, requiring 0-100.
func parsePercent(v string) (float64, error) {
	s, ok := strings.CutSuffix(strings.TrimSpace(v), "%")
	if !ok {
		return 0, fmt.Errorf("percent %q lacks \"%%\"", v)
	}
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
		return 0, fmt.Errorf("percent %q is not a number from 0 to 100", v)
	}
	return p, nil
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", v)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", v)
	}
	return d, nil
}

func splitList(v, sep string) []string {
	var out []string
	for _, s := range strings.Split(v, sep) {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
