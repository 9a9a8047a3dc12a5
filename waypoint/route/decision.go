package route

import (
	"net/http"

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

	Timeouts  *l7api.Timeouts
	Retry     *l7api.RetryPolicy
	Fault     *l7api.FaultInjection
	RateLimit *l7api.RateLimit
}

// Default reports whether no route matched.
func (d *Decision) Default() bool { return d.Route == DefaultRoute }

// ApplyRequest applies the route's request header modifiers, then the
// chosen backend's, then the route's URL rewrite (Host and path; the query
// is kept) to r before it is forwarded. It does nothing for redirects and
// direct responses, or for the default route.
func (d *Decision) ApplyRequest(r *http.Request) {}

// ApplyResponse applies the route's response header modifiers, then the
// chosen backend's, to the response headers h before they are written.
func (d *Decision) ApplyResponse(h http.Header) {}
