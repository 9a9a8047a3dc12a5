// Package route is the waypoint's HTTP router. Compile turns the
// weft.l7.v1 RouteConfig resources istiod-lite sends (already translated
// from Gateway API HTTPRoute and GRPCRoute) into an immutable Table, and
// Table.Match picks, for one request, the route that applies and what to do
// with the request: forward it to a weighted backend, answer with a
// redirect or a direct response, which header and URL rewrites to apply,
// which mirrors get a copy, and the route's timeout, retry, fault and rate
// limit settings.
//
// Semantics (Gateway API, with the choices this package makes):
//
//   - Routes of one RouteConfig are tried in list order and the first whose
//     port and match fit wins. istiod-lite emits them in Gateway API
//     precedence order (exact path, then longest prefix, then method, most
//     headers, most query params, oldest route, rule order); Match does not
//     re-sort.
//   - PathPrefix matches element-wise on the request's escaped path
//     (url.URL.EscapedPath, without query): "/foo" and "/foo/" both match
//     "/foo", "/foo/" and "/foo/bar" but not "/foobar"; "/" matches
//     everything. A percent-encoded slash is not a separator. Exact compares
//     the whole escaped path. Regex is RE2 and must match the whole path.
//     The waypoint should normalise the path before matching (see
//     waypoint/authz.NormalizePath) so routing and authorization agree.
//   - Header names compare case-insensitively; a header or query parameter
//     matches when any of its values matches. Query parameter names compare
//     exactly. Regex values must match the whole value. Method compares
//     exactly.
//   - Traffic that no route matches, and traffic to a host without a
//     RouteConfig, takes the default route: the Service itself on the
//     request's port.
//   - Backends are picked by weight with the Table's random source; if every
//     weight is zero the route answers 500, as Gateway API requires.
package route
