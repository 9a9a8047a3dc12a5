package l7

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/pkg/api/l7api"
	secv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
)

// WaypointGatewayClass is the GatewayClass of waypoints.
const WaypointGatewayClass = "istio-waypoint"

// annotationDryRun marks an AuthorizationPolicy as dry-run (Istio's).
const annotationDryRun = "istio.io/dry-run"

// ConditionKeys are the `when` keys a waypoint evaluates; request.headers
// takes a header name: request.headers[x-user].
var ConditionKeys = []string{"request.headers[<name>]", "source.ip", "source.namespace", "source.principal", "destination.ip", "destination.port"}

// isWaypointPolicy reports whether an AuthorizationPolicy is for waypoints
// (it has targetRef(s)); the others are L4 and go to ztunnel.
func isWaypointPolicy(ap *securityv1.AuthorizationPolicy) bool {
	return ap.Spec.GetTargetRef() != nil || len(ap.Spec.GetTargetRefs()) > 0
}

// gatewayClassOf returns the class of Gateway ns/name, false if unknown.
type gatewayClassOf func(ns, name string) (string, bool)

// translatePolicy turns an AuthorizationPolicy with targetRefs into an
// L7Policy; nil when it targets nothing served by a waypoint (yet) or is
// rejected. Unsupported or invalid parts of a rule are handled the strict
// way, as Istio does: in ALLOW and AUDIT policies the rule is dropped (it
// can then match nothing), in DENY policies the part is left out (the
// rule can only match more); each is reported.
func (c Config) translatePolicy(ap *securityv1.AuthorizationPolicy, classOf gatewayClassOf, p *problems) *l7api.L7Policy {
	spec := &ap.Spec
	out := &l7api.L7Policy{Name: ap.Name, Namespace: ap.Namespace, DryRun: ap.Annotations[annotationDryRun] == "true"}
	switch spec.GetAction() {
	case secv1beta1.AuthorizationPolicy_ALLOW:
		out.Action = l7api.Action_ALLOW
	case secv1beta1.AuthorizationPolicy_DENY:
		out.Action = l7api.Action_DENY
	case secv1beta1.AuthorizationPolicy_AUDIT:
		out.Action = l7api.Action_AUDIT
	default:
		p.reject("spec.action", "%s is not supported by waypoints", spec.GetAction())
		return nil
	}
	if spec.GetSelector() != nil {
		p.warn("spec.selector", "ignored: a policy with targetRefs applies to its targets")
	}
	refs := spec.GetTargetRefs()
	field := "spec.targetRefs[%d]"
	if r := spec.GetTargetRef(); r != nil {
		refs, field = append(refs[:len(refs):len(refs)], r), "spec.targetRef"
	}
	for i, r := range refs {
		f := field
		if strings.Contains(f, "%d") {
			f = fmt.Sprintf(f, i)
		}
		if r.GetNamespace() != "" && r.GetNamespace() != ap.Namespace {
			p.warn(f+".namespace", "must be the policy's namespace; target ignored")
			continue
		}
		switch {
		case r.GetKind() == "Gateway" && r.GetGroup() == "gateway.networking.k8s.io":
			if class, ok := classOf(ap.Namespace, r.GetName()); ok && class == WaypointGatewayClass {
				out.Targets = append(out.Targets, &l7api.PolicyTarget{Kind: l7api.PolicyTarget_GATEWAY, Namespace: ap.Namespace, Name: r.GetName()})
			}
		case r.GetKind() == "Service" && (r.GetGroup() == "" || r.GetGroup() == "core"):
			out.Targets = append(out.Targets, &l7api.PolicyTarget{Kind: l7api.PolicyTarget_SERVICE, Namespace: ap.Namespace, Name: r.GetName()})
		default:
			p.warn(f+".kind", "target %s/%s is not supported by waypoints (use a Gateway of class %s or a Service); target ignored", r.GetGroup(), r.GetKind(), WaypointGatewayClass)
		}
	}
	if len(out.Targets) == 0 {
		return nil
	}
	for ri, r := range spec.GetRules() {
		t := ruleTx{deny: out.Action == l7api.Action_DENY, field: fmt.Sprintf("spec.rules[%d]", ri), p: p, c: c, ns: ap.Namespace}
		if rule := t.rule(r); rule != nil {
			out.Rules = append(out.Rules, rule)
		}
	}
	return out
}

// ruleTx translates one rule, tracking the strict handling of bad parts.
type ruleTx struct {
	c       Config
	ns      string
	deny    bool
	field   string
	p       *problems
	dropped bool
}

func (t *ruleTx) bad(field, format string, args ...any) {
	how := "the rule is dropped (ALLOW/AUDIT)"
	if t.deny {
		how = "left out of the DENY rule"
	} else {
		t.dropped = true
	}
	t.p.warn(field, "%s; %s", fmt.Sprintf(format, args...), how)
}

func (t *ruleTx) rule(r *secv1beta1.Rule) *l7api.L7Rule {
	out := &l7api.L7Rule{}
	for i, f := range r.GetFrom() {
		out.From = append(out.From, t.source(f.GetSource(), fmt.Sprintf("%s.from[%d].source", t.field, i)))
	}
	for i, o := range r.GetTo() {
		out.To = append(out.To, t.operation(o.GetOperation(), fmt.Sprintf("%s.to[%d].operation", t.field, i)))
	}
	for i, c := range r.GetWhen() {
		if cond := t.condition(c, fmt.Sprintf("%s.when[%d]", t.field, i)); cond != nil {
			out.When = append(out.When, cond)
		}
	}
	if t.dropped {
		return nil
	}
	return out
}

func (t *ruleTx) source(s *secv1beta1.Source, f string) *l7api.Source {
	out := &l7api.Source{
		Principals:    s.GetPrincipals(),
		NotPrincipals: s.GetNotPrincipals(),
		Namespaces:    s.GetNamespaces(),
		NotNamespaces: s.GetNotNamespaces(),
		IpBlocks:      t.cidrs(s.GetIpBlocks(), f+".ipBlocks"),
		NotIpBlocks:   t.cidrs(s.GetNotIpBlocks(), f+".notIpBlocks"),
	}
	out.Principals = append(out.Principals, t.serviceAccounts(s.GetServiceAccounts(), f+".serviceAccounts")...)
	out.NotPrincipals = append(out.NotPrincipals, t.serviceAccounts(s.GetNotServiceAccounts(), f+".notServiceAccounts")...)
	for _, td := range s.GetTrustDomains() {
		out.Principals = append(out.Principals, td+"/*")
	}
	for _, td := range s.GetNotTrustDomains() {
		out.NotPrincipals = append(out.NotPrincipals, td+"/*")
	}
	for _, u := range []struct {
		name string
		v    []string
	}{
		{"requestPrincipals", s.GetRequestPrincipals()}, {"notRequestPrincipals", s.GetNotRequestPrincipals()},
		{"remoteIpBlocks", s.GetRemoteIpBlocks()}, {"notRemoteIpBlocks", s.GetNotRemoteIpBlocks()},
	} {
		if len(u.v) > 0 {
			t.bad(f+"."+u.name, "not supported by waypoints (no request authentication or forwarded-for trust)")
		}
	}
	return out
}

// serviceAccounts turns "ns/name" (or "name", in the policy's namespace)
// into principals.
func (t *ruleTx) serviceAccounts(sas []string, f string) []string {
	var out []string
	for _, sa := range sas {
		ns, name, ok := strings.Cut(sa, "/")
		if !ok {
			ns, name = t.ns, sa
		}
		if ns == "" || name == "" || strings.Contains(name, "/") {
			t.bad(f, "%q is not <namespace>/<name>", sa)
			continue
		}
		out = append(out, t.c.TrustDomain+"/ns/"+ns+"/sa/"+name)
	}
	return out
}

func (t *ruleTx) cidrs(vs []string, f string) []string {
	var out []string
	for _, v := range vs {
		if !validCIDR(v) {
			t.bad(f, "%q is not an IP address or CIDR", v)
			continue
		}
		out = append(out, v)
	}
	return out
}

func validCIDR(v string) bool {
	if _, err := netip.ParsePrefix(v); err == nil {
		return true
	}
	_, err := netip.ParseAddr(v)
	return err == nil
}

func (t *ruleTx) operation(o *secv1beta1.Operation, f string) *l7api.Operation {
	return &l7api.Operation{
		Hosts:      o.GetHosts(),
		NotHosts:   o.GetNotHosts(),
		Methods:    o.GetMethods(),
		NotMethods: o.GetNotMethods(),
		Paths:      t.paths(o.GetPaths(), f+".paths"),
		NotPaths:   t.paths(o.GetNotPaths(), f+".notPaths"),
		Ports:      t.ports(o.GetPorts(), f+".ports"),
		NotPorts:   t.ports(o.GetNotPorts(), f+".notPorts"),
	}
}

// paths checks Istio's path templates: "{*}" is one segment, "{**}" only
// the last one, and "*", "{" and "}" appear nowhere else in a template (a
// waypoint rejects such a policy, so it must not be sent).
func (t *ruleTx) paths(ps []string, f string) []string {
	var out []string
	for _, p := range ps {
		if strings.Contains(p, "{") {
			segs := strings.Split(p, "/")
			ok := strings.HasPrefix(p, "/")
			for i, s := range segs {
				lastRest := s == "{**}" && i == len(segs)-1
				if strings.ContainsAny(s, "*{}") && s != "{*}" && !lastRest {
					ok = false
				}
			}
			if !ok {
				t.bad(f, "%q is not a valid path template ({*} is one whole segment, {**} only the last, and * { } appear nowhere else)", p)
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

func (t *ruleTx) ports(ps []string, f string) []uint32 {
	var out []uint32
	for _, p := range ps {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			t.bad(f, "%q is not a port number", p)
			continue
		}
		out = append(out, uint32(n))
	}
	return out
}

func (t *ruleTx) condition(c *secv1beta1.Condition, f string) *l7api.Condition {
	key := c.GetKey()
	out := &l7api.Condition{Key: key, Values: c.GetValues(), NotValues: c.GetNotValues()}
	switch {
	case strings.HasPrefix(key, "request.headers[") && strings.HasSuffix(key, "]") && len(key) > len("request.headers[]"):
		name := key[len("request.headers[") : len(key)-1]
		out.Key = "request.headers[" + strings.ToLower(name) + "]"
	case key == "source.namespace" || key == "source.principal":
	case key == "source.ip" || key == "destination.ip":
		for _, v := range append(c.GetValues(), c.GetNotValues()...) {
			if !validCIDR(v) {
				t.bad(f+".values", "%q is not an IP address or CIDR", v)
				return nil
			}
		}
	case key == "destination.port":
		for _, v := range append(c.GetValues(), c.GetNotValues()...) {
			if n, err := strconv.ParseUint(v, 10, 16); err != nil || n == 0 {
				t.bad(f+".values", "%q is not a port number", v)
				return nil
			}
		}
	default:
		t.bad(f+".key", "%q is not supported by waypoints (supported: %s)", key, strings.Join(ConditionKeys, ", "))
		return nil
	}
	return out
}
