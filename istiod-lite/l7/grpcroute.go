package l7

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/weftmesh/weft/pkg/api/l7api"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// translateGRPCRoute translates one GRPCRoute: method matches become path
// matches on "/<service>/<method>", the gRPC request path.
func (c Config) translateGRPCRoute(r *gatewayv1.GRPCRoute, p *problems) *routeSet {
	rs := newRouteSet("GRPCRoute", r.ObjectMeta, r.Spec.ParentRefs, p)
	if len(rs.parents) == 0 {
		return rs
	}
	extras := parseRouteAnnotations(r.Annotations, p)
	for ri, rule := range r.Spec.Rules {
		f := fmt.Sprintf("spec.rules[%d]", ri)
		base := &l7api.Route{Fault: extras.fault, RateLimit: extras.rateLimit, Retry: extras.retry}
		c.grpcFilters(r.Namespace, f+".filters", rule.Filters, base, p)
		for bi, b := range rule.BackendRefs {
			bf := fmt.Sprintf("%s.backendRefs[%d]", f, bi)
			wb := c.backend(r.Namespace, bf, b.BackendRef, p)
			if wb == nil {
				continue
			}
			for fi, flt := range b.Filters {
				backendFilter(wb, fmt.Sprintf("%s.filters[%d]", bf, fi), string(flt.Type), flt.RequestHeaderModifier, flt.ResponseHeaderModifier, p)
			}
			base.Backends = append(base.Backends, wb)
		}
		finishTarget(base, f, len(rule.BackendRefs), p)
		if rule.SessionPersistence != nil {
			p.warn(f+".sessionPersistence", "not supported by waypoints; ignored")
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.GRPCRouteMatch{{}}
		}
		for mi, m := range matches {
			route := base
			if len(matches) > 1 {
				route = cloneRoute(base)
			}
			route.Name = routeName("GRPCRoute", r.Namespace, r.Name, ri, mi, len(matches))
			route.Match = grpcMatch(m, fmt.Sprintf("%s.matches[%d]", f, mi), p)
			rs.routes = append(rs.routes, route)
		}
	}
	return rs
}

func (c Config) grpcFilters(ns, field string, fs []gatewayv1.GRPCRouteFilter, r *l7api.Route, p *problems) {
	for i, f := range fs {
		ff := fmt.Sprintf("%s[%d]", field, i)
		switch f.Type {
		case gatewayv1.GRPCRouteFilterRequestHeaderModifier:
			r.RequestHeaders = append(r.RequestHeaders, headerModifiers(f.RequestHeaderModifier, ff+".requestHeaderModifier", p)...)
		case gatewayv1.GRPCRouteFilterResponseHeaderModifier:
			r.ResponseHeaders = append(r.ResponseHeaders, headerModifiers(f.ResponseHeaderModifier, ff+".responseHeaderModifier", p)...)
		case gatewayv1.GRPCRouteFilterRequestMirror:
			if m := c.mirror(ns, ff+".requestMirror", f.RequestMirror, p); m != nil {
				r.Mirrors = append(r.Mirrors, m)
			}
		default:
			p.reject(ff+".type", "filter %q is not supported by waypoints", f.Type)
		}
	}
}

// grpcNameRE is what an exact gRPC service or method name may hold.
var grpcNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// grpcMatch turns a GRPCRouteMatch into a path (and header) match:
// service and method exact → Exact "/s/m"; service only → PathPrefix "/s";
// method only, or any regular expression → RegularExpression.
func grpcMatch(m gatewayv1.GRPCRouteMatch, field string, p *problems) *l7api.RouteMatch {
	out := &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_PREFIX, Value: "/"}}
	if mm := m.Method; mm != nil {
		svc, method := derefStr(mm.Service), derefStr(mm.Method)
		if svc == "" && method == "" {
			p.reject(field+".method", "one of service or method must be set")
		}
		if mm.Type == nil || *mm.Type == gatewayv1.GRPCMethodMatchExact {
			for name, v := range map[string]string{"service": svc, "method": method} {
				if v != "" && !grpcNameRE.MatchString(v) {
					p.reject(field+".method."+name, "%q is not a valid gRPC name", v)
				}
			}
			switch {
			case svc != "" && method != "":
				out.Path = &l7api.PathMatch{Kind: l7api.PathMatch_EXACT, Value: "/" + svc + "/" + method}
			case svc != "":
				out.Path = &l7api.PathMatch{Kind: l7api.PathMatch_PREFIX, Value: "/" + svc}
			default:
				out.Path = &l7api.PathMatch{Kind: l7api.PathMatch_REGEX, Value: "^/[^/]+/" + regexp.QuoteMeta(method) + "$"}
			}
		} else if *mm.Type == gatewayv1.GRPCMethodMatchRegularExpression {
			if svc == "" {
				svc = "[^/]+"
			}
			if method == "" {
				method = "[^/]+"
			}
			checkRegex(svc, field+".method.service", p)
			checkRegex(method, field+".method.method", p)
			out.Path = &l7api.PathMatch{Kind: l7api.PathMatch_REGEX, Value: "^/(" + svc + ")/(" + method + ")$"}
		} else {
			p.reject(field+".method.type", "unknown method match type %q", *mm.Type)
		}
	}
	for i, h := range m.Headers {
		regex := h.Type != nil && *h.Type == gatewayv1.GRPCHeaderMatchRegularExpression
		if h.Type != nil && !regex && *h.Type != gatewayv1.GRPCHeaderMatchExact {
			p.reject(fmt.Sprintf("%s.headers[%d].type", field, i), "unknown header match type %q", *h.Type)
		}
		out.Headers = append(out.Headers, headerMatch(strings.ToLower(string(h.Name)), h.Value, regex, fmt.Sprintf("%s.headers[%d]", field, i), p))
	}
	return out
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
