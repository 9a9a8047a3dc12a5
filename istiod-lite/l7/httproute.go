package l7

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"google.golang.org/protobuf/types/known/durationpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// parent is one Service a route attaches to, optionally on one port.
type parent struct {
	service string // "<namespace>/<name>"
	port    uint32
}

// routeSet is one HTTPRoute or GRPCRoute translated: its routes (port 0;
// the parent's port is set when assembling) and the Services they attach
// to.
type routeSet struct {
	ref      ObjectRef
	created  time.Time
	parents  []parent
	statuses []ParentStatus // every Service parentRef, for route status
	routes   []*l7api.Route
}

// newRouteSet starts the translation of a route of kind: its reference
// and its Service parents.
func newRouteSet(kind string, m metav1.ObjectMeta, refs []gatewayv1.ParentReference, p *problems) *routeSet {
	rs := &routeSet{
		ref:     ObjectRef{Kind: kind, APIVersion: gatewayv1.GroupVersion.String(), Namespace: m.Namespace, Name: m.Name, UID: m.UID, Generation: m.Generation},
		created: m.CreationTimestamp.Time,
	}
	rs.parents, rs.statuses = serviceParents(m.Namespace, refs, p)
	return rs
}

// backendFilter applies one filter of a backendRef (field f). HTTPRoute
// and GRPCRoute allow the same two there, under the same type names.
func backendFilter(wb *l7api.WeightedBackend, f, typ string, req, resp *gatewayv1.HTTPHeaderFilter, p *problems) {
	switch typ {
	case string(gatewayv1.HTTPRouteFilterRequestHeaderModifier):
		wb.RequestHeaders = append(wb.RequestHeaders, headerModifiers(req, f+".requestHeaderModifier", p)...)
	case string(gatewayv1.HTTPRouteFilterResponseHeaderModifier):
		wb.ResponseHeaders = append(wb.ResponseHeaders, headerModifiers(resp, f+".responseHeaderModifier", p)...)
	default:
		p.reject(f+".type", "filter %q is not supported on a backendRef; use RequestHeaderModifier or ResponseHeaderModifier", typ)
	}
}

// Config configures translation.
type Config struct {
	// DomainSuffix is the cluster domain (default cluster.local).
	DomainSuffix string
	// TrustDomain forms principals from serviceAccounts (default
	// cluster.local).
	TrustDomain string
}

func (c Config) withDefaults() Config {
	if c.DomainSuffix == "" {
		c.DomainSuffix = "cluster.local"
	}
	if c.TrustDomain == "" {
		c.TrustDomain = "cluster.local"
	}
	return c
}

func (c Config) serviceRef(ns, name string) *l7api.ServiceRef {
	return &l7api.ServiceRef{Namespace: ns, Name: name, Hostname: name + "." + ns + ".svc." + c.DomainSuffix}
}

// Hostname is the cluster hostname of Service ns/name: the xDS name of its
// RouteConfig and TrafficPolicy.
func (c Config) Hostname(ns, name string) string {
	return name + "." + ns + ".svc." + c.withDefaults().DomainSuffix
}

// translateHTTPRoute translates one HTTPRoute. With problems.fatal the
// result must not be served.
func (c Config) translateHTTPRoute(r *gatewayv1.HTTPRoute, p *problems) *routeSet {
	rs := newRouteSet("HTTPRoute", r.ObjectMeta, r.Spec.ParentRefs, p)
	if len(rs.parents) == 0 {
		return rs
	}
	extras := parseRouteAnnotations(r.Annotations, p)
	for ri, rule := range r.Spec.Rules {
		f := fmt.Sprintf("spec.rules[%d]", ri)
		base := &l7api.Route{Fault: extras.fault, RateLimit: extras.rateLimit}
		c.httpFilters(r.Namespace, f+".filters", rule.Filters, base, p)
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
		if t := rule.Timeouts; t != nil {
			base.Timeouts = &l7api.Timeouts{
				Request:        gatewayDuration(t.Request, f+".timeouts.request", p),
				BackendRequest: gatewayDuration(t.BackendRequest, f+".timeouts.backendRequest", p),
			}
			if base.Timeouts.Request == nil && base.Timeouts.BackendRequest == nil {
				base.Timeouts = nil
			}
		}
		base.Retry = mergeRetry(rule.Retry, extras.retry, f+".retry", p)
		if rule.SessionPersistence != nil {
			p.warn(f+".sessionPersistence", "not supported by waypoints; ignored")
		}
		matches := rule.Matches
		if len(matches) == 0 {
			matches = []gatewayv1.HTTPRouteMatch{{}}
		}
		for mi, m := range matches {
			route := base
			if len(matches) > 1 {
				route = cloneRoute(base)
			}
			route.Name = routeName("HTTPRoute", r.Namespace, r.Name, ri, mi, len(matches))
			route.Match = httpMatch(m, fmt.Sprintf("%s.matches[%d]", f, mi), p)
			if isPrefixRewrite(route) {
				if route.Match.GetPath().GetKind() != l7api.PathMatch_PREFIX {
					p.reject(f+".filters", "ReplacePrefixMatch needs a PathPrefix match (matches[%d] is not one)", mi)
				}
			}
			rs.routes = append(rs.routes, route)
		}
	}
	return rs
}

// isPrefixRewrite reports a ReplacePrefixMatch rewrite or redirect path,
// including an empty replacement ("" is valid: strip the prefix).
func isPrefixRewrite(r *l7api.Route) bool {
	_, rw := r.GetRewrite().GetPath().GetKind().(*l7api.PathRewrite_ReplacePrefixMatch)
	_, rd := r.GetRedirect().GetPath().GetKind().(*l7api.PathRewrite_ReplacePrefixMatch)
	return rw || rd
}

// finishTarget makes sure exactly one of backends, redirect or direct
// response is set: a rule with neither backends nor a redirect answers 500
// as Gateway API requires.
func finishTarget(r *l7api.Route, field string, backendRefs int, p *problems) {
	switch {
	case r.Redirect != nil && backendRefs > 0:
		p.reject(field+".backendRefs", "a rule with a RequestRedirect filter must have no backendRefs")
	case r.Redirect != nil && r.Rewrite != nil:
		p.reject(field+".filters", "RequestRedirect and URLRewrite cannot be used together")
	case r.Redirect == nil && backendRefs == 0:
		r.DirectResponse = &l7api.DirectResponse{Status: 500}
	}
}

func routeName(kind, ns, name string, rule, match, matches int) string {
	n := fmt.Sprintf("%s/%s/%s/%d", kind, ns, name, rule)
	if matches > 1 {
		n += fmt.Sprintf("/%d", match)
	}
	return n
}

// serviceParents keeps the parentRefs that name a Service in the route's
// namespace; parents of other kinds (ingress Gateways) are not ours. It
// also returns the outcome for every Service parentRef.
func serviceParents(ns string, refs []gatewayv1.ParentReference, p *problems) ([]parent, []ParentStatus) {
	var out []parent
	var st []ParentStatus
	for i, ref := range refs {
		f := fmt.Sprintf("spec.parentRefs[%d]", i)
		if ref.Kind == nil || string(*ref.Kind) != "Service" || (ref.Group != nil && *ref.Group != "" && *ref.Group != "core") {
			continue
		}
		if ref.Namespace != nil && string(*ref.Namespace) != ns {
			const msg = "routes for a Service in another namespace (consumer routes) are not supported; parent ignored"
			p.warn(f+".namespace", msg)
			st = append(st, ParentStatus{Ref: ref, Problem: msg})
			continue
		}
		if ref.SectionName != nil {
			const msg = "not supported for Service parents, use port; parent ignored"
			p.warn(f+".sectionName", msg)
			st = append(st, ParentStatus{Ref: ref, Problem: "sectionName " + msg})
			continue
		}
		st = append(st, ParentStatus{Ref: ref})
		pa := parent{service: ns + "/" + string(ref.Name)}
		if ref.Port != nil {
			pa.port = uint32(*ref.Port)
		}
		if !containsParent(out, pa) {
			out = append(out, pa)
		}
	}
	return out, st
}

func containsParent(ps []parent, p parent) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// backend translates a Service backendRef in the route's namespace.
func (c Config) backend(ns, field string, b gatewayv1.BackendRef, p *problems) *l7api.WeightedBackend {
	ref, port, ok := c.objectRef(ns, field, b.BackendObjectReference, p)
	if !ok {
		return nil
	}
	w := uint32(1)
	if b.Weight != nil {
		if *b.Weight < 0 {
			p.reject(field+".weight", "must not be negative")
			return nil
		}
		w = uint32(*b.Weight)
	}
	return &l7api.WeightedBackend{Service: ref, Port: port, Weight: w}
}

func (c Config) objectRef(ns, field string, b gatewayv1.BackendObjectReference, p *problems) (*l7api.ServiceRef, uint32, bool) {
	if (b.Group != nil && *b.Group != "" && *b.Group != "core") || (b.Kind != nil && *b.Kind != "Service") {
		p.reject(field+".kind", "only Services can be backends (got group %q kind %q)", deref(b.Group), deref(b.Kind))
		return nil, 0, false
	}
	if b.Namespace != nil && string(*b.Namespace) != ns {
		p.reject(field+".namespace", "backends in other namespaces (ReferenceGrant) are not supported")
		return nil, 0, false
	}
	if b.Port == nil || *b.Port <= 0 {
		p.reject(field+".port", "a Service backend needs a port")
		return nil, 0, false
	}
	return c.serviceRef(ns, string(b.Name)), uint32(*b.Port), true
}

func deref[T ~string](v *T) string {
	if v == nil {
		return ""
	}
	return string(*v)
}

// httpFilters applies a rule's filters to r.
func (c Config) httpFilters(ns, field string, fs []gatewayv1.HTTPRouteFilter, r *l7api.Route, p *problems) {
	for i, f := range fs {
		ff := fmt.Sprintf("%s[%d]", field, i)
		switch f.Type {
		case gatewayv1.HTTPRouteFilterRequestHeaderModifier:
			r.RequestHeaders = append(r.RequestHeaders, headerModifiers(f.RequestHeaderModifier, ff+".requestHeaderModifier", p)...)
		case gatewayv1.HTTPRouteFilterResponseHeaderModifier:
			r.ResponseHeaders = append(r.ResponseHeaders, headerModifiers(f.ResponseHeaderModifier, ff+".responseHeaderModifier", p)...)
		case gatewayv1.HTTPRouteFilterRequestMirror:
			if m := c.mirror(ns, ff+".requestMirror", f.RequestMirror, p); m != nil {
				r.Mirrors = append(r.Mirrors, m)
			}
		case gatewayv1.HTTPRouteFilterRequestRedirect:
			rd := f.RequestRedirect
			if rd == nil {
				p.reject(ff+".requestRedirect", "missing for type RequestRedirect")
				continue
			}
			if r.Redirect != nil {
				p.reject(ff, "only one RequestRedirect filter is allowed per rule")
				continue
			}
			out := &l7api.Redirect{StatusCode: 302}
			if rd.Scheme != nil {
				out.Scheme = *rd.Scheme
				if out.Scheme != "http" && out.Scheme != "https" {
					p.reject(ff+".requestRedirect.scheme", "must be http or https")
				}
			}
			if rd.Hostname != nil {
				out.Hostname = string(*rd.Hostname)
			}
			if rd.Port != nil {
				out.Port = uint32(*rd.Port)
			}
			if rd.StatusCode != nil {
				switch *rd.StatusCode {
				case 301, 302, 303, 307, 308:
					out.StatusCode = uint32(*rd.StatusCode)
				default:
					p.reject(ff+".requestRedirect.statusCode", "%d is not a redirect status (301, 302, 303, 307, 308)", *rd.StatusCode)
				}
			}
			out.Path = pathModifier(rd.Path, ff+".requestRedirect.path", p)
			r.Redirect = out
		case gatewayv1.HTTPRouteFilterURLRewrite:
			rw := f.URLRewrite
			if rw == nil {
				p.reject(ff+".urlRewrite", "missing for type URLRewrite")
				continue
			}
			if r.Rewrite != nil {
				p.reject(ff, "only one URLRewrite filter is allowed per rule")
				continue
			}
			out := &l7api.URLRewrite{Path: pathModifier(rw.Path, ff+".urlRewrite.path", p)}
			if rw.Hostname != nil {
				out.Hostname = string(*rw.Hostname)
			}
			r.Rewrite = out
		default:
			p.reject(ff+".type", "filter %q is not supported by waypoints", f.Type)
		}
	}
}

func (c Config) mirror(ns, field string, m *gatewayv1.HTTPRequestMirrorFilter, p *problems) *l7api.Mirror {
	if m == nil {
		p.reject(field, "missing for type RequestMirror")
		return nil
	}
	ref, port, ok := c.objectRef(ns, field+".backendRef", m.BackendRef, p)
	if !ok {
		return nil
	}
	out := &l7api.Mirror{Service: ref, Port: port}
	switch {
	case m.Percent != nil && m.Fraction != nil:
		p.reject(field, "set percent or fraction, not both")
	case m.Percent != nil:
		if *m.Percent < 0 || *m.Percent > 100 {
			p.reject(field+".percent", "must be from 0 to 100")
		}
		out.Percent = float64(*m.Percent)
		if out.Percent == 0 {
			return nil // mirrors nothing; 0 on the wire would mean all
		}
	case m.Fraction != nil:
		den := int32(100)
		if m.Fraction.Denominator != nil {
			den = *m.Fraction.Denominator
		}
		if den <= 0 || m.Fraction.Numerator < 0 || m.Fraction.Numerator > den {
			p.reject(field+".fraction", "want 0 <= numerator <= denominator, denominator > 0")
			return nil
		}
		if m.Fraction.Numerator == 0 {
			return nil
		}
		out.Percent = 100 * float64(m.Fraction.Numerator) / float64(den)
	}
	return out
}

func pathModifier(m *gatewayv1.HTTPPathModifier, field string, p *problems) *l7api.PathRewrite {
	if m == nil {
		return nil
	}
	switch m.Type {
	case gatewayv1.FullPathHTTPPathModifier:
		if m.ReplaceFullPath == nil {
			p.reject(field+".replaceFullPath", "missing for type ReplaceFullPath")
			return nil
		}
		return &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplaceFullPath{ReplaceFullPath: *m.ReplaceFullPath}}
	case gatewayv1.PrefixMatchHTTPPathModifier:
		if m.ReplacePrefixMatch == nil {
			p.reject(field+".replacePrefixMatch", "missing for type ReplacePrefixMatch")
			return nil
		}
		return &l7api.PathRewrite{Kind: &l7api.PathRewrite_ReplacePrefixMatch{ReplacePrefixMatch: *m.ReplacePrefixMatch}}
	}
	p.reject(field+".type", "unknown path modifier %q", m.Type)
	return nil
}

func headerModifiers(f *gatewayv1.HTTPHeaderFilter, field string, p *problems) []*l7api.HeaderModifier {
	if f == nil {
		p.reject(field, "missing for its filter type")
		return nil
	}
	var out []*l7api.HeaderModifier
	for _, h := range f.Set {
		out = append(out, &l7api.HeaderModifier{Op: l7api.HeaderModifier_SET, Name: strings.ToLower(string(h.Name)), Value: h.Value})
	}
	for _, h := range f.Add {
		out = append(out, &l7api.HeaderModifier{Op: l7api.HeaderModifier_ADD, Name: strings.ToLower(string(h.Name)), Value: h.Value})
	}
	for _, n := range f.Remove {
		out = append(out, &l7api.HeaderModifier{Op: l7api.HeaderModifier_REMOVE, Name: strings.ToLower(n)})
	}
	for i, h := range out {
		if h.Name == "" || strings.ContainsAny(h.Name, " :\t\r\n") {
			p.reject(field, "header name %q (operation %d) is not valid", h.Name, i)
		}
	}
	return out
}

func httpMatch(m gatewayv1.HTTPRouteMatch, field string, p *problems) *l7api.RouteMatch {
	out := &l7api.RouteMatch{Path: &l7api.PathMatch{Kind: l7api.PathMatch_PREFIX, Value: "/"}}
	if m.Path != nil {
		if m.Path.Value != nil {
			out.Path.Value = *m.Path.Value
		}
		kind := gatewayv1.PathMatchPathPrefix
		if m.Path.Type != nil {
			kind = *m.Path.Type
		}
		switch kind {
		case gatewayv1.PathMatchPathPrefix, gatewayv1.PathMatchExact:
			if kind == gatewayv1.PathMatchExact {
				out.Path.Kind = l7api.PathMatch_EXACT
			}
			if !strings.HasPrefix(out.Path.Value, "/") {
				p.reject(field+".path.value", "%q must start with \"/\"", out.Path.Value)
			}
		case gatewayv1.PathMatchRegularExpression:
			out.Path.Kind = l7api.PathMatch_REGEX
			checkRegex(out.Path.Value, field+".path.value", p)
		default:
			p.reject(field+".path.type", "unknown path match type %q", kind)
		}
	}
	for i, h := range m.Headers {
		regex := h.Type != nil && *h.Type == gatewayv1.HeaderMatchRegularExpression
		if h.Type != nil && !regex && *h.Type != gatewayv1.HeaderMatchExact {
			p.reject(fmt.Sprintf("%s.headers[%d].type", field, i), "unknown header match type %q", *h.Type)
		}
		out.Headers = append(out.Headers, headerMatch(string(h.Name), h.Value, regex, fmt.Sprintf("%s.headers[%d]", field, i), p))
	}
	for i, q := range m.QueryParams {
		regex := q.Type != nil && *q.Type == gatewayv1.QueryParamMatchRegularExpression
		if q.Type != nil && !regex && *q.Type != gatewayv1.QueryParamMatchExact {
			p.reject(fmt.Sprintf("%s.queryParams[%d].type", field, i), "unknown query parameter match type %q", *q.Type)
		}
		hm := headerMatch(string(q.Name), q.Value, regex, fmt.Sprintf("%s.queryParams[%d]", field, i), p)
		hm.Name = string(q.Name) // query parameter names are case-sensitive
		out.QueryParams = append(out.QueryParams, hm)
	}
	if m.Method != nil {
		out.Method = string(*m.Method)
	}
	return out
}

func headerMatch(name, value string, regex bool, field string, p *problems) *l7api.HeaderMatch {
	hm := &l7api.HeaderMatch{Name: strings.ToLower(name), Value: value}
	if regex {
		hm.Kind = l7api.HeaderMatch_REGEX
		checkRegex(value, field+".value", p)
	}
	return hm
}

func checkRegex(expr, field string, p *problems) {
	if _, err := regexp.Compile(expr); err != nil {
		p.reject(field, "not an RE2 regular expression: %v", err)
	}
}

// gatewayDurationRE is GEP-2257's duration format.
var gatewayDurationRE = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

// gatewayDuration parses a Gateway API duration; zero (disabled) is nil.
func gatewayDuration(d *gatewayv1.Duration, field string, p *problems) *durationpb.Duration {
	if d == nil {
		return nil
	}
	v, err := time.ParseDuration(string(*d))
	if err != nil || !gatewayDurationRE.MatchString(string(*d)) {
		p.reject(field, "%q is not a Gateway API duration such as \"1s\" or \"1m30s\"", *d)
		return nil
	}
	if v == 0 {
		return nil
	}
	return durationpb.New(v)
}

// mergeRetry combines rules[].retry (experimental channel) with the retry
// annotations; the rule's attempts, codes and backoff win.
func mergeRetry(rule *gatewayv1.HTTPRouteRetry, ann *l7api.RetryPolicy, field string, p *problems) *l7api.RetryPolicy {
	if rule == nil {
		if ann == nil {
			return nil
		}
		return cloneRetry(ann)
	}
	out := &l7api.RetryPolicy{Attempts: defaultRetryAttempts}
	if ann != nil {
		out = cloneRetry(ann)
	}
	if rule.Attempts != nil {
		if *rule.Attempts < 0 {
			p.reject(field+".attempts", "must not be negative")
		} else {
			out.Attempts = uint32(*rule.Attempts)
		}
	}
	if len(rule.Codes) > 0 {
		out.Codes = nil
		for i, c := range rule.Codes {
			if c < 400 || c > 599 {
				p.reject(fmt.Sprintf("%s.codes[%d]", field, i), "%d is not from 400 to 599", c)
				continue
			}
			out.Codes = append(out.Codes, uint32(c))
		}
	}
	if b := gatewayDuration(rule.Backoff, field+".backoff", p); b != nil {
		out.Backoff = b
	}
	return out
}
