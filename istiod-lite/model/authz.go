package model

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"google.golang.org/protobuf/types/known/emptypb"
	secv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
)

// TranslateAuthorizationPolicy converts an AuthorizationPolicy into the L4
// Authorization ztunnel enforces, following Istio's ambient split:
//   - CUSTOM and AUDIT policies, and policies with targetRef(s) (which are for
//     waypoints), give nil: ztunnel does not enforce them.
//   - In an ALLOW policy a rule using HTTP-only fields (hosts, methods, paths,
//     requestPrincipals, remoteIpBlocks, trustDomains, when keys other than
//     source.ip, source.namespace, source.principal, destination.ip,
//     destination.port) or an unparsable value is dropped; an ALLOW policy
//     left without rules denies everything.
//   - In a DENY policy such a rule is kept without the HTTP-only parts and
//     the unparsable values, which can only make it match more (stricter).
//
// rootNamespace makes a selector-less policy mesh-wide. The result is never
// nil for ALLOW and DENY policies without targetRefs.
func TranslateAuthorizationPolicy(p *securityv1.AuthorizationPolicy, rootNamespace string) *securityapi.Authorization {
	spec := &p.Spec
	if spec.GetTargetRef() != nil || len(spec.GetTargetRefs()) > 0 {
		return nil
	}
	var action securityapi.Action
	switch spec.GetAction() {
	case secv1beta1.AuthorizationPolicy_ALLOW:
		action = securityapi.Action_ALLOW
	case secv1beta1.AuthorizationPolicy_DENY:
		action = securityapi.Action_DENY
	default:
		return nil
	}
	out := &securityapi.Authorization{
		Name:      p.Name,
		Namespace: p.Namespace,
		Scope:     policyScope(p.Namespace, rootNamespace, spec.GetSelector().GetMatchLabels()),
		Action:    action,
		DryRun:    p.Annotations[AnnotationDryRun] == "true",
	}
	for _, r := range spec.GetRules() {
		t := ruleTranslator{deny: action == securityapi.Action_DENY, ns: p.Namespace}
		if rule := t.rule(r); rule != nil {
			out.Rules = append(out.Rules, rule)
		}
	}
	return out
}

func policyScope(ns, root string, selector map[string]string) securityapi.Scope {
	switch {
	case len(selector) > 0:
		return securityapi.Scope_WORKLOAD_SELECTOR
	case ns == root:
		return securityapi.Scope_GLOBAL
	default:
		return securityapi.Scope_NAMESPACE
	}
}

// ruleTranslator converts one rule. In ALLOW mode (deny=false) anything it
// cannot express at L4 marks the rule dropped; in DENY mode it is left out.
type ruleTranslator struct {
	deny    bool
	ns      string
	dropped bool
}

// l7 records an HTTP-only or invalid part; in an ALLOW policy the rule goes.
func (t *ruleTranslator) l7(present bool) {
	if present && !t.deny {
		t.dropped = true
	}
}

func (t *ruleTranslator) rule(r *secv1beta1.Rule) *securityapi.Rule {
	var from, to []*securityapi.Match
	for _, f := range r.GetFrom() {
		from = append(from, t.source(f.GetSource()))
	}
	for _, o := range r.GetTo() {
		to = append(to, t.operation(o.GetOperation()))
	}
	out := &securityapi.Rule{}
	if len(from) > 0 {
		out.Clauses = append(out.Clauses, &securityapi.Clause{Matches: from})
	}
	if len(to) > 0 {
		out.Clauses = append(out.Clauses, &securityapi.Clause{Matches: to})
	}
	for _, c := range r.GetWhen() {
		if m := t.condition(c); m != nil {
			out.Clauses = append(out.Clauses, &securityapi.Clause{Matches: []*securityapi.Match{m}})
		}
	}
	if t.dropped {
		return nil
	}
	return out
}

func (t *ruleTranslator) source(s *secv1beta1.Source) *securityapi.Match {
	t.l7(len(s.GetRequestPrincipals())+len(s.GetNotRequestPrincipals())+len(s.GetRemoteIpBlocks())+len(s.GetNotRemoteIpBlocks())+len(s.GetTrustDomains())+len(s.GetNotTrustDomains()) > 0)
	return &securityapi.Match{
		Principals:         principalMatches(s.GetPrincipals()),
		NotPrincipals:      principalMatches(s.GetNotPrincipals()),
		Namespaces:         stringMatches(s.GetNamespaces()),
		NotNamespaces:      stringMatches(s.GetNotNamespaces()),
		ServiceAccounts:    t.serviceAccounts(s.GetServiceAccounts()),
		NotServiceAccounts: t.serviceAccounts(s.GetNotServiceAccounts()),
		SourceIps:          t.cidrs(s.GetIpBlocks()),
		NotSourceIps:       t.cidrs(s.GetNotIpBlocks()),
	}
}

func (t *ruleTranslator) operation(o *secv1beta1.Operation) *securityapi.Match {
	t.l7(len(o.GetHosts())+len(o.GetNotHosts())+len(o.GetMethods())+len(o.GetNotMethods())+len(o.GetPaths())+len(o.GetNotPaths()) > 0)
	return &securityapi.Match{
		DestinationPorts:    t.ports(o.GetPorts()),
		NotDestinationPorts: t.ports(o.GetNotPorts()),
	}
}

// condition converts a when condition; nil when nothing of it is L4.
func (t *ruleTranslator) condition(c *secv1beta1.Condition) *securityapi.Match {
	v, nv := c.GetValues(), c.GetNotValues()
	switch c.GetKey() {
	case "source.ip":
		return &securityapi.Match{SourceIps: t.cidrs(v), NotSourceIps: t.cidrs(nv)}
	case "source.namespace":
		return &securityapi.Match{Namespaces: stringMatches(v), NotNamespaces: stringMatches(nv)}
	case "source.principal":
		return &securityapi.Match{Principals: principalMatches(v), NotPrincipals: principalMatches(nv)}
	case "destination.ip":
		return &securityapi.Match{DestinationIps: t.cidrs(v), NotDestinationIps: t.cidrs(nv)}
	case "destination.port":
		return &securityapi.Match{DestinationPorts: t.ports(v), NotDestinationPorts: t.ports(nv)}
	default:
		t.l7(true)
		return nil
	}
}

func (t *ruleTranslator) ports(in []string) []uint32 {
	var out []uint32
	for _, s := range in {
		p, err := strconv.ParseUint(s, 10, 16)
		if err != nil || p == 0 {
			t.l7(true)
			continue
		}
		out = append(out, uint32(p))
	}
	return out
}

func (t *ruleTranslator) cidrs(in []string) []*securityapi.Address {
	var out []*securityapi.Address
	for _, s := range in {
		a, err := parseCIDR(s)
		if err != nil {
			t.l7(true)
			continue
		}
		out = append(out, a)
	}
	return out
}

func parseCIDR(s string) (*securityapi.Address, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("parse ip block %q: %w", s, err)
		}
		p = p.Masked()
		return &securityapi.Address{Address: p.Addr().AsSlice(), Length: uint32(p.Bits())}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return nil, fmt.Errorf("parse ip %q: %w", s, err)
	}
	a = a.Unmap()
	return &securityapi.Address{Address: a.AsSlice(), Length: uint32(a.BitLen())}, nil
}

func (t *ruleTranslator) serviceAccounts(in []string) []*securityapi.ServiceAccountMatch {
	var out []*securityapi.ServiceAccountMatch
	for _, s := range in {
		ns, sa, ok := strings.Cut(s, "/")
		if !ok {
			ns, sa = t.ns, s
		}
		if ns == "" || sa == "" || strings.Contains(sa, "/") {
			t.l7(true)
			continue
		}
		out = append(out, &securityapi.ServiceAccountMatch{Namespace: ns, ServiceAccount: sa})
	}
	return out
}

func principalMatches(in []string) []*securityapi.StringMatch {
	out := make([]*securityapi.StringMatch, 0, len(in))
	for _, s := range in {
		out = append(out, stringMatch(strings.TrimPrefix(s, "spiffe://")))
	}
	return nilIfEmpty(out)
}

func stringMatches(in []string) []*securityapi.StringMatch {
	out := make([]*securityapi.StringMatch, 0, len(in))
	for _, s := range in {
		out = append(out, stringMatch(s))
	}
	return nilIfEmpty(out)
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// stringMatch follows Istio's string syntax: "*" is presence, "*x" a
// suffix, "x*" a prefix, anything else exact.
func stringMatch(s string) *securityapi.StringMatch {
	switch {
	case s == "*":
		return &securityapi.StringMatch{MatchType: &securityapi.StringMatch_Presence{Presence: &emptypb.Empty{}}}
	case strings.HasPrefix(s, "*"):
		return &securityapi.StringMatch{MatchType: &securityapi.StringMatch_Suffix{Suffix: s[1:]}}
	case strings.HasSuffix(s, "*"):
		return &securityapi.StringMatch{MatchType: &securityapi.StringMatch_Prefix{Prefix: s[:len(s)-1]}}
	default:
		return &securityapi.StringMatch{MatchType: &securityapi.StringMatch_Exact{Exact: s}}
	}
}
