package l4authz

import (
	"net/netip"
	"slices"
	"sort"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/identity"
)

// Conn is what the engine knows about one inbound connection.
type Conn struct {
	// SrcIP is the client's address.
	SrcIP netip.Addr
	// DstIP and DstPort are the destination workload's address and port.
	DstIP   netip.Addr
	DstPort uint16
	// Identity is the peer's authenticated identity; the zero ID when the
	// connection carries none (plaintext).
	Identity identity.ID
}

// Target is the destination workload the policies are selected for.
type Target struct {
	// Namespace of the workload; NAMESPACE-scoped policies of this
	// namespace apply.
	Namespace string
	// Policies are the "<namespace>/<name>" keys of the WORKLOAD_SELECTOR
	// policies that select the workload (Workload.authorization_policies).
	Policies []string
}

// Decision is the engine's verdict on one connection.
type Decision struct {
	// Allowed is the verdict.
	Allowed bool
	// Policy is the key of the deciding policy: the matching DENY or ALLOW
	// policy; empty when the verdict follows from there being no ALLOW
	// policy, or from no ALLOW policy matching.
	Policy string
	// Reason says why, for logs and access logs.
	Reason string
	// DryRun lists the dry-run policies that matched, each as
	// "<action> <key>"; they did not influence the verdict.
	DryRun []string
}

// Reasons reported in Decision.Reason.
const (
	ReasonDenyMatched   = "denied by policy"
	ReasonAllowMatched  = "allowed by policy"
	ReasonNoAllowPolicy = "no allow policy applies"
	ReasonNoAllowMatch  = "no allow policy matched"
)

// Engine decides connections against a fixed set of compiled policies. It is
// immutable and safe for concurrent use; build a new one when policies
// change.
type Engine struct {
	global      []*Policy
	byNamespace map[string][]*Policy
	selector    map[string]*Policy
	all         []*Policy
}

// NewEngine indexes policies by scope. A later policy with the same key
// replaces an earlier one.
func NewEngine(policies ...*Policy) *Engine {
	byKey := make(map[string]*Policy, len(policies))
	for _, p := range policies {
		byKey[p.Key] = p
	}
	e := &Engine{byNamespace: map[string][]*Policy{}, selector: map[string]*Policy{}}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := byKey[k]
		e.all = append(e.all, p)
		switch p.Scope {
		case securityapi.Scope_GLOBAL:
			e.global = append(e.global, p)
		case securityapi.Scope_NAMESPACE:
			e.byNamespace[p.Namespace] = append(e.byNamespace[p.Namespace], p)
		case securityapi.Scope_WORKLOAD_SELECTOR:
			e.selector[p.Key] = p
		}
	}
	return e
}

// Policies returns the engine's policies sorted by key.
func (e *Engine) Policies() []*Policy { return slices.Clone(e.all) }

// Applicable returns the policies that apply to t: global ones, the ones of
// t's namespace, and the selector policies t lists that exist.
func (e *Engine) Applicable(t Target) []*Policy {
	var out []*Policy
	e.forEach(t, func(p *Policy) bool { out = append(out, p); return true })
	return out
}

func (e *Engine) forEach(t Target, fn func(*Policy) bool) {
	for _, p := range e.global {
		if !fn(p) {
			return
		}
	}
	for _, p := range e.byNamespace[t.Namespace] {
		if !fn(p) {
			return
		}
	}
	for _, k := range t.Policies {
		if p, ok := e.selector[k]; ok {
			if !fn(p) {
				return
			}
		}
	}
}

// Evaluate decides c for the workload t. A nil engine allows everything.
func (e *Engine) Evaluate(t Target, c Conn) Decision {
	if e == nil {
		return Decision{Allowed: true, Reason: ReasonNoAllowPolicy}
	}
	in := newInput(c)
	var d Decision
	var denied *Policy
	haveAllow := false
	var allowed *Policy
	e.forEach(t, func(p *Policy) bool {
		if p.DryRun {
			if p.matches(&in) {
				d.DryRun = append(d.DryRun, p.Action.String()+" "+p.Key)
			}
			return true
		}
		switch p.Action {
		case securityapi.Action_DENY:
			if denied == nil && p.matches(&in) {
				denied = p
			}
		default:
			haveAllow = true
			if allowed == nil && p.matches(&in) {
				allowed = p
			}
		}
		return true
	})
	switch {
	case denied != nil:
		d.Allowed, d.Policy, d.Reason = false, denied.Key, ReasonDenyMatched
	case !haveAllow:
		d.Allowed, d.Reason = true, ReasonNoAllowPolicy
	case allowed != nil:
		d.Allowed, d.Policy, d.Reason = true, allowed.Key, ReasonAllowMatched
	default:
		d.Allowed, d.Reason = false, ReasonNoAllowMatch
	}
	return d
}
