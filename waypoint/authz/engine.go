package authz

import (
	"errors"
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
	// SourceNamespace is used only when SourcePrincipal is empty or not a
	// SPIFFE ID; otherwise the namespace comes from the principal.
	SourceNamespace string
	// SourceIP is the original client address.
	SourceIP netip.Addr
	// Host is the request's Host (authority), with or without port.
	Host string
	// Method is the HTTP method.
	Method string
	// Path is the escaped request path as received (url.URL.EscapedPath or
	// the request target); Evaluate normalises it (see NormalizePath) and
	// ignores anything from '?' on.
	Path string
	// Port is the destination Service port.
	Port uint16
	// Headers are the request headers (canonical keys, as net/http gives).
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
	// DryRun lists the dry-run policies that matched ("namespace/name").
	DryRun []string
}

// Engine holds compiled policies. It is immutable and safe for
// concurrent use; a new configuration means a new Engine.
type Engine struct{}

// Compile validates and compiles ps. Errors name the policy
// ("namespace/name") and the offending field, e.g. a bad CIDR, a bad path
// template, or an unsupported `when` key. Duplicate names are an error.
func Compile(ps []*l7api.L7Policy) (*Engine, error) {
	return nil, errors.New("authz: not implemented")
}

// Evaluate decides r. It allocates only when it records audit or dry-run
// policies or normalises a path that needs it.
func (e *Engine) Evaluate(r *Request) Verdict {
	return Verdict{}
}

// NormalizePath returns the escaped path p (as on the wire; anything from
// '?' on is dropped) normalised as Evaluate matches it. The waypoint should forward (and route) the normalised path
// so the backend sees what authorization saw. It returns p itself when
// nothing changes.
func NormalizePath(p string) string {
	return p
}
