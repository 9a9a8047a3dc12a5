package route

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// Rand is a source of uniformly distributed random numbers, used to pick
// weighted backends and mirror percentages. Match calls it from many
// goroutines at once, so it must be safe for concurrent use (a
// *math/rand/v2.Rand is not; wrap it with a mutex in tests).
type Rand interface {
	Uint64() uint64
}

// Option configures Compile.
type Option func(*options)

type options struct {
	rnd Rand
}

// WithRand makes the Table draw from r instead of the runtime's
// goroutine-safe generator. Tests use it for deterministic choices.
func WithRand(r Rand) Option {
	return func(o *options) { o.rnd = r }
}

type runtimeRand struct{}

func (runtimeRand) Uint64() uint64 { return rand.Uint64() }

// Table is a compiled, immutable set of routes keyed by service hostname.
// It is safe for concurrent use; a new configuration means a new Table.
type Table struct {
	rnd      Rand
	services map[string]*service
}

// service is one compiled RouteConfig.
type service struct {
	ref    *l7api.ServiceRef
	routes []*route
}

// emptyTable stands in for a nil *Table: everything takes the default
// route.
var emptyTable = &Table{rnd: runtimeRand{}}

// Compile validates and compiles cfgs. Errors name the RouteConfig (by
// hostname), the route (by name) and the offending field. Two
// RouteConfigs for the same hostname are an error. A nil or empty cfgs
// gives a Table where everything takes the default route.
func Compile(cfgs []*l7api.RouteConfig, opts ...Option) (*Table, error) {
	o := options{rnd: runtimeRand{}}
	for _, opt := range opts {
		opt(&o)
	}
	t := &Table{rnd: o.rnd, services: make(map[string]*service, len(cfgs))}
	for i, cfg := range cfgs {
		svc, err := compileConfig(i, cfg)
		if err != nil {
			return nil, err
		}
		key := strings.ToLower(svc.ref.GetHostname())
		if _, dup := t.services[key]; dup {
			return nil, fmt.Errorf("routeconfig %q: service.hostname: a second RouteConfig for this hostname", svc.ref.GetHostname())
		}
		t.services[key] = svc
	}
	return t, nil
}

// Match returns what to do with r, addressed to the Service with hostname
// host (resolved by the waypoint from the HBONE authority; compared
// case-insensitively) on Service port port. It does not modify r. It does
// not allocate except for redirects, for mirror draws that drop some but
// not all mirrors, and for a host without a RouteConfig (whose default
// Backend gets a ServiceRef holding only the hostname). A nil Table
// routes everything to the default route.
func (t *Table) Match(host string, port uint16, r *http.Request) Decision {
	if t == nil {
		t = emptyTable
	}
	svc := t.services[host]
	if svc == nil {
		svc = t.services[strings.ToLower(host)]
	}
	if svc == nil {
		return Decision{Route: DefaultRoute, Action: Forward,
			Backend: Backend{Service: &l7api.ServiceRef{Hostname: host}, Port: port}}
	}
	path := requestPath(r)
	for _, rt := range svc.routes {
		if !rt.matches(port, path, r) {
			continue
		}
		return t.decide(rt, svc.ref.GetHostname(), port, r)
	}
	return Decision{Route: DefaultRoute, Action: Forward, Backend: Backend{Service: svc.ref, Port: port}}
}

func (rt *route) matches(port uint16, path string, r *http.Request) bool {
	if rt.port != 0 && rt.port != port {
		return false
	}
	if !rt.path.match(path) {
		return false
	}
	if rt.method != "" && rt.method != r.Method {
		return false
	}
	for i := range rt.headers {
		if !rt.headers[i].matchHeader(r) {
			return false
		}
	}
	if len(rt.query) > 0 {
		raw := ""
		if r.URL != nil {
			raw = r.URL.RawQuery
		}
		for i := range rt.query {
			if !rt.query[i].matchQuery(raw) {
				return false
			}
		}
	}
	return true
}

func (t *Table) decide(rt *route, host string, port uint16, r *http.Request) Decision {
	d := Decision{
		Route:     rt.name,
		Action:    rt.action,
		Timeouts:  rt.timeouts,
		Retry:     rt.retry,
		Fault:     rt.fault,
		RateLimit: rt.rateLimit,
		rt:        rt,
	}
	switch rt.action {
	case Redirect:
		d.Status = rt.redirect.status
		d.Location = rt.redirect.location(r, host, port, rt.path.prefixValue())
		return d
	case Respond:
		d.Status, d.Body = rt.status, rt.body
		return d
	}
	b := t.pick(rt)
	if b == nil {
		d.Action, d.Status = Respond, http.StatusInternalServerError
		return d
	}
	d.Backend, d.be = b.Backend, b
	d.Mirrors = t.drawMirrors(rt)
	return d
}

// pick chooses a backend by weight, or nil when every weight is zero.
func (t *Table) pick(rt *route) *backend {
	switch {
	case rt.total == 0:
		return nil
	case len(rt.backends) == 1:
		return &rt.backends[0]
	}
	// x is uniform in [0, total): the high word of a 64×64 multiply.
	x, _ := bits.Mul64(t.rnd.Uint64(), rt.total)
	for i := range rt.backends {
		if x < rt.backends[i].cum {
			return &rt.backends[i]
		}
	}
	return &rt.backends[len(rt.backends)-1]
}

// drawMirrors returns the mirrors this request goes to. Mirrors at 100%
// share the compiled slice.
func (t *Table) drawMirrors(rt *route) []Backend {
	if len(rt.mirrors) == 0 {
		return nil
	}
	if rt.mirrorsAlways {
		return rt.mirrorTargets
	}
	var chosen uint64
	n := 0
	for i := range rt.mirrors {
		if rt.mirrors[i].always || t.rnd.Uint64() < rt.mirrors[i].threshold {
			chosen |= 1 << i
			n++
		}
	}
	switch n {
	case 0:
		return nil
	case len(rt.mirrors):
		return rt.mirrorTargets
	}
	out := make([]Backend, 0, n)
	for i := range rt.mirrors {
		if chosen&(1<<i) != 0 {
			out = append(out, rt.mirrorTargets[i])
		}
	}
	return out
}
