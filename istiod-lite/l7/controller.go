package l7

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/pkg/api/l7api"
	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Types are the type URLs the Controller serves, in push order.
var Types = []string{l7api.RouteConfigType, l7api.TrafficPolicyType, l7api.L7PolicyType}

type set = map[string]struct{}

// Controller holds the waypoint configuration inputs and the L7 resources
// derived from them. Every method is safe for concurrent use; Upsert
// methods read the objects passed in and never modify them (they may be
// shared with other informer consumers).
//
// RouteConfigs exist for Services with attached routes or declared port
// protocols (name "<name>.<namespace>.svc.<domain>"); a Service without
// one has only the default route and sniffed ports. L7Policies are named
// "<namespace>/<name>"; TrafficPolicies are named by Service hostname.
type Controller struct {
	cfg Config
	log *slog.Logger
	rep Reporter

	mu            sync.Mutex
	services      map[string]*corev1.Service
	gateways      map[string]string    // "<ns>/<name>" -> class
	routes        map[string]*routeSet // "<kind>/<ns>/<name>" -> accepted translation
	routesBySvc   map[string]set       // service key -> route keys
	policies      map[string]*securityv1.AuthorizationPolicy
	policiesByNS  map[string]set
	traffic       map[string]*trafficSet // "<ns>/<name>" -> accepted translation
	trafficByHost map[string]set
	out           map[string]map[string]*model.Resource
	changed       map[string]set
	reported      map[string]string // object key -> last reported message
	reports       []Report
	recomputes    int // resources rebuilt, for tests of incrementality

	listenersMu sync.Mutex
	listeners   []func(model.Changes)
}

// New returns an empty Controller. rep may be nil (problems are logged
// only).
func New(cfg Config, log *slog.Logger, rep Reporter) *Controller {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{
		cfg: cfg.withDefaults(), log: log, rep: rep,
		services: map[string]*corev1.Service{}, gateways: map[string]string{},
		routes: map[string]*routeSet{}, routesBySvc: map[string]set{},
		policies: map[string]*securityv1.AuthorizationPolicy{}, policiesByNS: map[string]set{},
		traffic: map[string]*trafficSet{}, trafficByHost: map[string]set{},
		out: map[string]map[string]*model.Resource{}, changed: map[string]set{},
		reported: map[string]string{},
	}
	for _, t := range Types {
		c.out[t] = map[string]*model.Resource{}
	}
	return c
}

// OnChange registers fn, called after each update that changed resources,
// without locks held; it must not block.
func (c *Controller) OnChange(fn func(model.Changes)) {
	c.listenersMu.Lock()
	c.listeners = append(c.listeners, fn)
	c.listenersMu.Unlock()
}

// Get returns the resource of typeURL named name, nil if none.
func (c *Controller) Get(typeURL, name string) *model.Resource {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out[typeURL][name]
}

// All returns every resource of typeURL, in no particular order.
func (c *Controller) All(typeURL string) []*model.Resource {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Values(c.out[typeURL]))
}

// Sizes reports input and output counts, for metrics and debugging.
func (c *Controller) Sizes() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return map[string]int{
		"l7_routes":           len(c.routes),
		"l7_policies":         len(c.policies),
		"l7_destinationrules": len(c.traffic),
		"routeconfigs":        len(c.out[l7api.RouteConfigType]),
		"l7policies":          len(c.out[l7api.L7PolicyType]),
		"trafficpolicies":     len(c.out[l7api.TrafficPolicyType]),
	}
}

func (c *Controller) update(fn func()) {
	at := time.Now()
	c.mu.Lock()
	fn()
	ch := model.Changes{At: at}
	for t, names := range c.changed {
		if len(names) > 0 {
			if ch.Other == nil {
				ch.Other = map[string][]string{}
			}
			ch.Other[t] = slices.Collect(maps.Keys(names))
		}
	}
	clear(c.changed)
	reports := c.reports
	c.reports = nil
	c.mu.Unlock()
	for _, r := range reports {
		if len(r.Problems) > 0 {
			c.log.Warn("waypoint config problem", "object", r.Ref.String(), "rejected", r.Rejected, "problems", r.Message())
		}
		if c.rep != nil {
			c.rep.Report(r)
		}
	}
	if ch.Empty() {
		return
	}
	c.listenersMu.Lock()
	ls := slices.Clone(c.listeners)
	c.listenersMu.Unlock()
	for _, l := range ls {
		l(ch)
	}
}

// publish sets (msg non-nil) or removes resource name of typeURL.
func (c *Controller) publish(typeURL, name string, msg proto.Message) {
	c.recomputes++
	var r *model.Resource
	if msg != nil {
		var err error
		if r, err = model.NewResource(name, nil, msg); err != nil {
			c.log.Error("encode l7 resource", "type", typeURL, "name", name, "err", err)
			return
		}
	}
	old, had := c.out[typeURL][name]
	switch {
	case r == nil && !had:
		return
	case r != nil && had && old.Version == r.Version:
		return
	case r == nil:
		delete(c.out[typeURL], name)
	default:
		c.out[typeURL][name] = r
	}
	if c.changed[typeURL] == nil {
		c.changed[typeURL] = set{}
	}
	c.changed[typeURL][name] = struct{}{}
}

// report queues a report when an object's problems changed, and for a
// route with Service parents also once per generation (for its status).
func (c *Controller) report(key string, ref ObjectRef, p *problems, parents []ParentStatus) {
	r := Report{Ref: ref, Rejected: p.fatal, Problems: p.list, Parents: parents}
	state := ""
	if len(p.list) > 0 {
		state = r.Message()
	}
	if len(parents) > 0 {
		state = fmt.Sprintf("%d|%s|%v", ref.Generation, ref.UID, state)
	}
	last, had := c.reported[key]
	switch {
	case had && last == state:
		return
	case state == "" && !had:
		return
	case state == "":
		delete(c.reported, key)
	default:
		c.reported[key] = state
	}
	c.reports = append(c.reports, r)
}

func (c *Controller) forgetReport(key string) { delete(c.reported, key) }

func addTo(m map[string]set, k, v string) {
	s, ok := m[k]
	if !ok {
		s = set{}
		m[k] = s
	}
	s[v] = struct{}{}
}

func removeFrom(m map[string]set, k, v string) {
	if s, ok := m[k]; ok {
		delete(s, v)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

func key(ns, name string) string { return ns + "/" + name }

// --- Services and route configs ---

// UpsertService records a Service (for port protocols and to know which
// RouteConfigs can exist).
func (c *Controller) UpsertService(s *corev1.Service) {
	c.update(func() {
		k := key(s.Namespace, s.Name)
		c.services[k] = s
		c.recomputeRouteConfig(k)
	})
}

// DeleteService forgets a Service and removes its RouteConfig.
func (c *Controller) DeleteService(ns, name string) {
	c.update(func() {
		k := key(ns, name)
		delete(c.services, k)
		c.recomputeRouteConfig(k)
	})
}

func (c *Controller) recomputeRouteConfig(svcKey string) {
	ns, name, _ := strings.Cut(svcKey, "/")
	host := c.cfg.Hostname(ns, name)
	svc := c.services[svcKey]
	if svc == nil {
		c.publish(l7api.RouteConfigType, host, nil)
		return
	}
	var sets []*routeSet
	for _, rk := range slices.Sorted(maps.Keys(c.routesBySvc[svcKey])) {
		sets = append(sets, c.routes[rk])
	}
	rc := c.cfg.buildRouteConfig(svc, sets)
	if len(rc.Routes) == 0 && len(rc.PortProtocols) == 0 {
		c.publish(l7api.RouteConfigType, host, nil)
		return
	}
	c.publish(l7api.RouteConfigType, host, rc)
}

// setRouteSet replaces the accepted translation of route object rk (nil
// removes it) and rebuilds the RouteConfigs of every Service it attached
// to before or after.
func (c *Controller) setRouteSet(rk string, rs *routeSet) {
	touched := set{}
	if old := c.routes[rk]; old != nil {
		for _, pa := range old.parents {
			removeFrom(c.routesBySvc, pa.service, rk)
			touched[pa.service] = struct{}{}
		}
	}
	delete(c.routes, rk)
	if rs != nil && len(rs.parents) > 0 {
		c.routes[rk] = rs
		for _, pa := range rs.parents {
			addTo(c.routesBySvc, pa.service, rk)
			touched[pa.service] = struct{}{}
		}
	}
	for s := range touched {
		c.recomputeRouteConfig(s)
	}
}

// UpsertHTTPRoute translates an HTTPRoute; a rejected one is withdrawn.
func (c *Controller) UpsertHTTPRoute(r *gatewayv1.HTTPRoute) {
	c.update(func() {
		var p problems
		rs := c.cfg.translateHTTPRoute(r, &p)
		rk := "HTTPRoute/" + key(r.Namespace, r.Name)
		c.report(rk, rs.ref, &p, rs.statuses)
		if p.fatal {
			rs = nil
		}
		c.setRouteSet(rk, rs)
	})
}

// DeleteHTTPRoute withdraws an HTTPRoute's routes.
func (c *Controller) DeleteHTTPRoute(ns, name string) {
	c.update(func() {
		rk := "HTTPRoute/" + key(ns, name)
		c.forgetReport(rk)
		c.setRouteSet(rk, nil)
	})
}

// UpsertGRPCRoute translates a GRPCRoute; a rejected one is withdrawn.
func (c *Controller) UpsertGRPCRoute(r *gatewayv1.GRPCRoute) {
	c.update(func() {
		var p problems
		rs := c.cfg.translateGRPCRoute(r, &p)
		rk := "GRPCRoute/" + key(r.Namespace, r.Name)
		c.report(rk, rs.ref, &p, rs.statuses)
		if p.fatal {
			rs = nil
		}
		c.setRouteSet(rk, rs)
	})
}

// DeleteGRPCRoute withdraws a GRPCRoute's routes.
func (c *Controller) DeleteGRPCRoute(ns, name string) {
	c.update(func() {
		rk := "GRPCRoute/" + key(ns, name)
		c.forgetReport(rk)
		c.setRouteSet(rk, nil)
	})
}

// --- Gateways and policies ---

// UpsertGateway records a Gateway's class; policies targeting Gateways in
// its namespace are re-evaluated when the class changes.
func (c *Controller) UpsertGateway(g *gatewayv1.Gateway) {
	c.update(func() {
		k := key(g.Namespace, g.Name)
		class := string(g.Spec.GatewayClassName)
		if old, ok := c.gateways[k]; ok && old == class {
			return
		}
		c.gateways[k] = class
		c.recomputePoliciesIn(g.Namespace)
	})
}

// DeleteGateway forgets a Gateway.
func (c *Controller) DeleteGateway(ns, name string) {
	c.update(func() {
		k := key(ns, name)
		if _, ok := c.gateways[k]; !ok {
			return
		}
		delete(c.gateways, k)
		c.recomputePoliciesIn(ns)
	})
}

func (c *Controller) recomputePoliciesIn(ns string) {
	for pk := range c.policiesByNS[ns] {
		c.recomputePolicy(pk)
	}
}

func (c *Controller) classOf(ns, name string) (string, bool) {
	class, ok := c.gateways[key(ns, name)]
	return class, ok
}

func (c *Controller) recomputePolicy(pk string) {
	ap := c.policies[pk]
	if ap == nil {
		c.publish(l7api.L7PolicyType, pk, nil)
		return
	}
	var p problems
	pol := c.cfg.translatePolicy(ap, c.classOf, &p)
	c.report("AuthorizationPolicy/"+pk, ObjectRef{Kind: "AuthorizationPolicy", APIVersion: securityv1.SchemeGroupVersion.String(), Namespace: ap.Namespace, Name: ap.Name, UID: ap.UID, Generation: ap.Generation}, &p, nil)
	if pol == nil {
		c.publish(l7api.L7PolicyType, pk, nil)
		return
	}
	c.publish(l7api.L7PolicyType, pk, pol)
}

// UpsertAuthorizationPolicy translates a policy with targetRefs; policies
// without (L4, enforced by ztunnel) are ignored here.
func (c *Controller) UpsertAuthorizationPolicy(ap *securityv1.AuthorizationPolicy) {
	c.update(func() {
		pk := key(ap.Namespace, ap.Name)
		if !isWaypointPolicy(ap) {
			if _, had := c.policies[pk]; had {
				c.removePolicy(ap.Namespace, ap.Name)
			}
			return
		}
		c.policies[pk] = ap
		addTo(c.policiesByNS, ap.Namespace, pk)
		c.recomputePolicy(pk)
	})
}

// DeleteAuthorizationPolicy withdraws a policy.
func (c *Controller) DeleteAuthorizationPolicy(ns, name string) {
	c.update(func() { c.removePolicy(ns, name) })
}

func (c *Controller) removePolicy(ns, name string) {
	pk := key(ns, name)
	delete(c.policies, pk)
	removeFrom(c.policiesByNS, ns, pk)
	c.forgetReport("AuthorizationPolicy/" + pk)
	c.publish(l7api.L7PolicyType, pk, nil)
}

// --- DestinationRules and traffic policies ---

// UpsertDestinationRule translates a DestinationRule; a rejected one is
// withdrawn. When several apply to one Service the oldest wins.
func (c *Controller) UpsertDestinationRule(dr *networkingv1.DestinationRule) {
	c.update(func() {
		var p problems
		ts := c.cfg.translateDestinationRule(dr, &p)
		dk := key(dr.Namespace, dr.Name)
		c.report("DestinationRule/"+dk, ts.ref, &p, nil)
		if p.fatal {
			ts = nil
		}
		c.setTraffic(dk, ts)
	})
}

// DeleteDestinationRule withdraws a DestinationRule.
func (c *Controller) DeleteDestinationRule(ns, name string) {
	c.update(func() {
		dk := key(ns, name)
		c.forgetReport("DestinationRule/" + dk)
		c.setTraffic(dk, nil)
	})
}

func (c *Controller) setTraffic(dk string, ts *trafficSet) {
	touched := set{}
	if old := c.traffic[dk]; old != nil {
		removeFrom(c.trafficByHost, old.host, dk)
		touched[old.host] = struct{}{}
	}
	delete(c.traffic, dk)
	if ts != nil {
		c.traffic[dk] = ts
		addTo(c.trafficByHost, ts.host, dk)
		touched[ts.host] = struct{}{}
	}
	for h := range touched {
		c.recomputeTraffic(h)
	}
}

func (c *Controller) recomputeTraffic(host string) {
	var best *trafficSet
	for dk := range c.trafficByHost[host] {
		ts := c.traffic[dk]
		if best == nil || ts.created.Before(best.created) ||
			(ts.created.Equal(best.created) && key(ts.ref.Namespace, ts.ref.Name) < key(best.ref.Namespace, best.ref.Name)) {
			best = ts
		}
	}
	if best == nil {
		c.publish(l7api.TrafficPolicyType, host, nil)
		return
	}
	c.publish(l7api.TrafficPolicyType, host, best.policy)
}
