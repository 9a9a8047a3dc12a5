package authz

import (
	"net/http"
	"net/netip"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// Request is what Evaluate decides on: one HTTP request as the waypoint
// received it.
type Request struct {
	// Gateway is the waypoint's own Gateway as "namespace/name".
	Gateway string
	// Service is the destination Service as "namespace/name".
	Service string
	// SourcePrincipal is the client's SPIFFE ID from the HBONE peer
	// certificate ("spiffe://td/ns/x/sa/y"), empty when unauthenticated.
	SourcePrincipal string
	// SourceNamespace is used only when SourcePrincipal is empty or holds
	// no namespace; otherwise the namespace comes from the principal.
	SourceNamespace string
	// SourceIP is the original client address.
	SourceIP netip.Addr
	// Host is the request's Host (authority), with or without port.
	Host string
	// Method is the HTTP method.
	Method string
	// Path is the escaped request path as received (url.URL.EscapedPath,
	// or the request target, absolute-form included); Evaluate normalises
	// it (see NormalizePath) and ignores anything from '?' on.
	Path string
	// DestinationIP is the original destination address from the HBONE
	// authority (the Service VIP, or the pod IP when a pod was addressed);
	// it is what a `when` on destination.ip compares.
	DestinationIP netip.Addr
	// Port is the destination Service port.
	Port uint16
	// TCP marks a connection the waypoint forwards at L4: it has no HTTP
	// attributes, and Host, Method, Path and Headers are ignored. As in
	// Istio, an ALLOW or AUDIT rule that needs an HTTP attribute (hosts,
	// methods, paths, request.headers) does not match, and a DENY rule is
	// checked without its HTTP parts, which is stricter.
	TCP bool
	// Headers are the request headers (canonical keys, as net/http gives).
	// A `when` on request.headers[host] reads Host instead, since net/http
	// keeps the Host header out of this map.
	Headers http.Header
}

// Verdict is Evaluate's decision.
type Verdict struct {
	// Allow says whether the request may proceed.
	Allow bool
	// Policy names the deciding policy as "namespace/name": the matching
	// DENY, or the matching ALLOW. It is empty when no policy applied
	// (allowed) or when ALLOW policies applied and none matched (denied).
	Policy string
	// Audit lists the matching AUDIT policies ("namespace/name").
	Audit []string
	// DryRun lists the dry-run ALLOW and DENY policies that matched
	// ("namespace/name").
	DryRun []string
}

// Engine holds compiled policies. It is immutable and safe for
// concurrent use; a new configuration means a new Engine.
type Engine struct {
	byGateway targets
	byService targets
}

// targets indexes policies by the "namespace/name" they target.
type targets map[string]*targetSet

func (t targets) add(key string, p *policy) {
	set := t[key]
	if set == nil {
		set = &targetSet{}
		t[key] = set
	}
	switch {
	case p.dryRun && p.action != l7api.Action_AUDIT:
		set.dryRun = append(set.dryRun, p)
	case p.action == l7api.Action_DENY:
		set.deny = append(set.deny, p)
	case p.action == l7api.Action_ALLOW:
		set.allow = append(set.allow, p)
	default:
		set.audit = append(set.audit, p)
	}
}

// targetSet holds the policies of one target by role, each sorted by
// "namespace/name".
type targetSet struct {
	deny, allow, audit, dryRun []*policy
}

// Evaluate decides r with Istio's precedence: a matching DENY denies; else
// if any ALLOW policy applies, one must match; else the request is
// allowed. Policies targeting both the Gateway and the Service count once.
// Evaluate allocates only when it records audit or dry-run policies or
// normalises a path that needs it.
//
// A nil Engine holds no policies and allows everything.
func (e *Engine) Evaluate(r *Request) Verdict {
	if e == nil {
		return Verdict{Allow: true}
	}
	gw, svc := e.byGateway[r.Gateway], e.byService[r.Service]
	if gw == nil && svc == nil {
		return Verdict{Allow: true}
	}
	var a attrs
	a.init(r)
	var v Verdict
	if gw != nil {
		v.Audit = a.collect(v.Audit, gw.audit, "")
		v.DryRun = a.collect(v.DryRun, gw.dryRun, "")
	}
	if svc != nil {
		v.Audit = a.collect(v.Audit, svc.audit, r.Gateway)
		v.DryRun = a.collect(v.DryRun, svc.dryRun, r.Gateway)
	}
	if p := a.first(gw, svc, func(s *targetSet) []*policy { return s.deny }); p != nil {
		v.Policy = p.id
		return v
	}
	if p := a.first(gw, svc, func(s *targetSet) []*policy { return s.allow }); p != nil {
		v.Allow, v.Policy = true, p.id
		return v
	}
	v.Allow = (gw == nil || len(gw.allow) == 0) && (svc == nil || len(svc.allow) == 0)
	return v
}

// first returns the first matching policy of the role, gateway policies
// before service policies.
func (a *attrs) first(gw, svc *targetSet, role func(*targetSet) []*policy) *policy {
	if gw != nil {
		for _, p := range role(gw) {
			if a.matches(p) {
				return p
			}
		}
	}
	if svc != nil {
		for _, p := range role(svc) {
			if a.matches(p) {
				return p
			}
		}
	}
	return nil
}

// collect appends the ids of matching policies, skipping those that also
// target gateway skip (already seen through the gateway).
func (a *attrs) collect(out []string, ps []*policy, skip string) []string {
	for _, p := range ps {
		if skip != "" && p.targetsGateway(skip) {
			continue
		}
		if a.matches(p) {
			out = append(out, p.id)
		}
	}
	return out
}
