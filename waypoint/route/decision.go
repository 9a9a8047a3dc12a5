package route

import (
	"net/http"
	"net/url"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// DefaultRoute is Decision.Route when no route matched.
const DefaultRoute = "default"

// Action says what the waypoint does with a request.
type Action uint8

const (
	// Forward sends the request to Decision.Backend.
	Forward Action = iota
	// Redirect answers Decision.Status with a Location header of
	// Decision.Location.
	Redirect
	// Respond answers Decision.Status with Decision.Body.
	Respond
)

// String returns "forward", "redirect" or "respond".
func (a Action) String() string {
	switch a {
	case Forward:
		return "forward"
	case Redirect:
		return "redirect"
	case Respond:
		return "respond"
	}
	return "unknown"
}

// Backend is a Service port to send a request (or a mirrored copy) to.
// Service is shared with the Table and must not be modified; for the
// default route of a host without a RouteConfig it holds only the
// hostname.
type Backend struct {
	Service *l7api.ServiceRef
	Port    uint16
}

// Decision is the result of Table.Match. The pointer fields are shared,
// read-only parts of the compiled Table; nil means the route sets none.
type Decision struct {
	// Route is the matched route's name, or DefaultRoute.
	Route string
	// Action says which of Backend, Location or Body applies.
	Action Action
	// Backend is the chosen backend when Action is Forward.
	Backend Backend
	// Status is the redirect or direct response status code.
	Status int
	// Location is the absolute redirect target when Action is Redirect.
	Location string
	// Body is the direct response body when Action is Respond.
	Body string
	// Mirrors get a fire-and-forget copy of the request (after
	// ApplyRequest); the percentages are already drawn. Do not modify.
	Mirrors []Backend

	// Timeouts, Retry, Fault and RateLimit are the route's settings; nil
	// when the route sets none and for the default route.
	Timeouts  *l7api.Timeouts
	Retry     *l7api.RetryPolicy
	Fault     *l7api.FaultInjection
	RateLimit *l7api.RateLimit

	rt *route   // nil for the default route
	be *backend // the chosen backend when Action is Forward on a route
}

// Default reports whether no route matched.
func (d *Decision) Default() bool { return d.Route == DefaultRoute }

// ApplyRequest applies the route's request header modifiers, then the
// chosen backend's, then the route's URL rewrite (Host and path; the query
// is kept) to r before it is forwarded. It does nothing for redirects and
// direct responses, or for the default route.
//
// Header names compare case-insensitively: SET replaces every value, ADD
// appends one, REMOVE deletes the header; SET or ADD of "Host" sets
// r.Host. A path rewrite sets r.URL.Path and r.URL.RawPath (so the
// escaped form is kept) and leaves r.RequestURI alone; a hostname rewrite
// sets r.Host (and r.URL.Host when it is set). ApplyRequest is meant to
// run once per request, before mirrors copy it.
func (d *Decision) ApplyRequest(r *http.Request) {
	if d.rt == nil || d.Action != Forward {
		return
	}
	if r.Header == nil && (len(d.rt.requestOps) > 0 || (d.be != nil && len(d.be.requestOps) > 0)) {
		r.Header = make(http.Header)
	}
	applyRequestOps(d.rt.requestOps, r)
	if d.be != nil {
		applyRequestOps(d.be.requestOps, r)
	}
	if d.rt.hostRewrite != "" {
		r.Host = d.rt.hostRewrite
		if r.URL != nil && r.URL.Host != "" {
			r.URL.Host = d.rt.hostRewrite
		}
	}
	if d.rt.pathRewrite.set() && r.URL != nil {
		setEscapedPath(r.URL, d.rt.pathRewrite.apply(requestPath(r), d.rt.path.prefixValue()))
	}
}

// setEscapedPath sets u's path from its escaped form p, which the
// compiler checked is validly escaped.
func setEscapedPath(u *url.URL, p string) {
	dec, err := url.PathUnescape(p)
	if err != nil {
		u.Path, u.RawPath = p, ""
		return
	}
	u.Path = dec
	if dec == p {
		u.RawPath = ""
	} else {
		u.RawPath = p
	}
}

// ApplyResponse applies the route's response header modifiers, then the
// chosen backend's, to the response headers h before they are written.
// A nil h is left alone. It does nothing for the default route.
func (d *Decision) ApplyResponse(h http.Header) {
	if d.rt == nil || h == nil {
		return
	}
	applyHeaderOps(d.rt.responseOps, h)
	if d.be != nil {
		applyHeaderOps(d.be.responseOps, h)
	}
}
