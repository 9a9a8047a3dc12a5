package route

import (
	"fmt"
	"math"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// maxMirrors bounds a route's mirrors so one draw fits a bit mask.
const maxMirrors = 64

// route is one compiled Route.
type route struct {
	name    string
	port    uint16
	method  string
	path    pathMatcher
	headers []valueMatcher
	query   []valueMatcher

	action   Action
	backends []backend
	total    uint64 // sum of weights
	redirect *redirect
	status   int
	body     string

	requestOps  []headerOp
	responseOps []headerOp
	hostRewrite string
	pathRewrite pathRewrite

	mirrors       []mirror
	mirrorTargets []Backend
	mirrorsAlways bool

	timeouts  *l7api.Timeouts
	retry     *l7api.RetryPolicy
	fault     *l7api.FaultInjection
	rateLimit *l7api.RateLimit
}

// prefixValue is the matched prefix that ReplacePrefixMatch replaces.
func (m *pathMatcher) prefixValue() string {
	if m.kind == pathPrefix {
		return m.value
	}
	return ""
}

type backend struct {
	Backend
	cum         uint64 // cumulative weight up to and including this one
	requestOps  []headerOp
	responseOps []headerOp
}

type mirror struct {
	always    bool
	threshold uint64 // mirrored when a draw is below it
}

func compileConfig(i int, cfg *l7api.RouteConfig) (*service, error) {
	if cfg == nil {
		return nil, fmt.Errorf("routeconfig [%d]: nil", i)
	}
	ref := cfg.GetService()
	host := ref.GetHostname()
	if host == "" {
		return nil, fmt.Errorf("routeconfig [%d]: service.hostname: empty", i)
	}
	svc := &service{ref: ref, routes: make([]*route, 0, len(cfg.GetRoutes()))}
	seen := make(map[string]bool, len(cfg.GetRoutes()))
	for j, r := range cfg.GetRoutes() {
		if r.GetName() == "" {
			return nil, fmt.Errorf("routeconfig %q: routes[%d].name: empty", host, j)
		}
		if seen[r.GetName()] {
			return nil, fmt.Errorf("routeconfig %q: route %q: name: duplicate", host, r.GetName())
		}
		seen[r.GetName()] = true
		rt, err := compileRoute(r)
		if err != nil {
			return nil, fmt.Errorf("routeconfig %q: route %q: %w", host, r.GetName(), err)
		}
		svc.routes = append(svc.routes, rt)
	}
	return svc, nil
}

func compileRoute(r *l7api.Route) (*route, error) {
	rt := &route{
		name:      r.GetName(),
		method:    r.GetMatch().GetMethod(),
		timeouts:  r.GetTimeouts(),
		retry:     r.GetRetry(),
		fault:     r.GetFault(),
		rateLimit: r.GetRateLimit(),
	}
	if r.GetPort() > 65535 {
		return nil, fmt.Errorf("port: %d out of range", r.GetPort())
	}
	rt.port = uint16(r.GetPort())
	var err error
	if rt.path, err = compilePath(r.GetMatch().GetPath()); err != nil {
		return nil, err
	}
	for i, hm := range r.GetMatch().GetHeaders() {
		m, err := compileValueMatch(hm, true)
		if err != nil {
			return nil, fmt.Errorf("match.headers[%d]: %w", i, err)
		}
		rt.headers = append(rt.headers, m)
	}
	for i, qm := range r.GetMatch().GetQueryParams() {
		m, err := compileValueMatch(qm, false)
		if err != nil {
			return nil, fmt.Errorf("match.query_params[%d]: %w", i, err)
		}
		rt.query = append(rt.query, m)
	}
	if err := rt.compileAction(r); err != nil {
		return nil, err
	}
	if rt.requestOps, err = compileHeaderOps("request_headers", r.GetRequestHeaders(), true); err != nil {
		return nil, err
	}
	if rt.responseOps, err = compileHeaderOps("response_headers", r.GetResponseHeaders(), false); err != nil {
		return nil, err
	}
	if rw := r.GetRewrite(); rw != nil {
		if rt.action == Redirect {
			return nil, fmt.Errorf("rewrite: cannot be combined with redirect")
		}
		if err := checkHostname(rw.GetHostname()); err != nil {
			return nil, fmt.Errorf("rewrite.hostname: %w", err)
		}
		rt.hostRewrite = rw.GetHostname()
		if rt.pathRewrite, err = compilePathRewrite(rw.GetPath(), rt.path); err != nil {
			return nil, fmt.Errorf("rewrite.%w", err)
		}
	}
	if err := rt.compileMirrors(r.GetMirrors()); err != nil {
		return nil, err
	}
	return rt, nil
}

func (rt *route) compileAction(r *l7api.Route) error {
	n := 0
	if len(r.GetBackends()) > 0 {
		n++
		rt.action = Forward
	}
	if r.GetRedirect() != nil {
		n++
		rt.action = Redirect
	}
	if r.GetDirectResponse() != nil {
		n++
		rt.action = Respond
	}
	switch n {
	case 0:
		return fmt.Errorf("backends: empty, and no redirect or direct_response")
	case 1:
	default:
		return fmt.Errorf("backends: exactly one of backends, redirect and direct_response may be set")
	}
	switch rt.action {
	case Redirect:
		rd, err := compileRedirect(r.GetRedirect(), rt.path)
		if err != nil {
			return err
		}
		rt.redirect = rd
	case Respond:
		dr := r.GetDirectResponse()
		if dr.GetStatus() < 200 || dr.GetStatus() > 599 {
			return fmt.Errorf("direct_response.status: %d: want 200-599", dr.GetStatus())
		}
		rt.status, rt.body = int(dr.GetStatus()), dr.GetBody()
	case Forward:
		for i, b := range r.GetBackends() {
			field := fmt.Sprintf("backends[%d]", i)
			target, err := compileTarget(field, b.GetService(), b.GetPort())
			if err != nil {
				return err
			}
			rt.total += uint64(b.GetWeight())
			if rt.total > math.MaxUint32 {
				return fmt.Errorf("%s.weight: weights overflow: the total exceeds %d", field, uint32(math.MaxUint32))
			}
			be := backend{Backend: target, cum: rt.total}
			if be.requestOps, err = compileHeaderOps(field+".request_headers", b.GetRequestHeaders(), true); err != nil {
				return err
			}
			if be.responseOps, err = compileHeaderOps(field+".response_headers", b.GetResponseHeaders(), false); err != nil {
				return err
			}
			rt.backends = append(rt.backends, be)
		}
	}
	return nil
}

func compileTarget(field string, ref *l7api.ServiceRef, port uint32) (Backend, error) {
	if ref.GetHostname() == "" {
		return Backend{}, fmt.Errorf("%s.service.hostname: empty", field)
	}
	if port == 0 || port > 65535 {
		return Backend{}, fmt.Errorf("%s.port: %d: want 1-65535", field, port)
	}
	return Backend{Service: ref, Port: uint16(port)}, nil
}

func (rt *route) compileMirrors(ms []*l7api.Mirror) error {
	if len(ms) > maxMirrors {
		return fmt.Errorf("mirrors: %d mirrors: at most %d", len(ms), maxMirrors)
	}
	rt.mirrorsAlways = true
	for i, m := range ms {
		field := fmt.Sprintf("mirrors[%d]", i)
		target, err := compileTarget(field, m.GetService(), m.GetPort())
		if err != nil {
			return err
		}
		p := m.GetPercent()
		if math.IsNaN(p) || p < 0 || p > 100 {
			return fmt.Errorf("%s.percent: %v: want 0-100", field, p)
		}
		mr := mirror{always: p == 0 || p == 100}
		if !mr.always {
			rt.mirrorsAlways = false
			mr.threshold = uint64(p / 100 * (1 << 63) * 2)
		}
		rt.mirrors = append(rt.mirrors, mr)
		rt.mirrorTargets = append(rt.mirrorTargets, target)
	}
	return nil
}
