// Package authz is the waypoint's L7 authorization engine. Compile turns
// the weft.l7.v1 L7Policy resources istiod-lite sends (AuthorizationPolicy
// with targetRefs to the waypoint's Gateway or to a Service) into matchers
// once; Engine.Evaluate then decides each HTTP request with Istio's
// semantics:
//
//   - A policy applies when one of its targets names the waypoint's Gateway
//     (GATEWAY) or the request's destination Service (SERVICE). A policy
//     without targets applies to nothing.
//   - A matching DENY policy denies. Otherwise, if no ALLOW policy applies,
//     the request is allowed; if some do, one of them must match. AUDIT
//     policies that match are recorded and never decide. Dry-run policies
//     are evaluated and reported but never decide.
//   - Rules are OR-ed; a rule's from, to and when must all match; entries
//     within each are OR-ed; fields within an entry are AND-ed; the values
//     of one field are OR-ed and a not_ field matches when none of its
//     values match (so it matches when the attribute is absent).
//   - Strings use Istio's forms: exact, "prefix*", "*suffix" and "*"
//     (presence). Hosts compare case-insensitively and match with or
//     without the request's port. Principals compare without "spiffe://".
//   - The source namespace comes from the principal
//     (".../ns/<namespace>/sa/..."), or from Request.SourceNamespace when
//     there is no principal. A `when` key is one of request.headers[<name>]
//     (any value of a repeated header may match; names are
//     case-insensitive), source.ip, source.namespace, source.principal,
//     destination.ip and destination.port; other keys (request.auth.*,
//     remote.ip, connection.sni...) fail Compile.
//   - Paths accept Istio's templates: "{*}" is one non-empty segment,
//     "{**}" the rest of the path (possibly empty; only as the last
//     segment).
//   - TCP traffic (Request.TCP) has no HTTP attributes: an ALLOW or AUDIT
//     rule that needs hosts, methods, paths or request headers does not
//     match it, and a DENY rule is checked without those parts.
//   - Paths are matched after NormalizePath: Istio's BASE normalisation
//     (RFC 3986: decode percent-encoded unreserved characters, resolve "."
//     and ".." segments, backslash to slash) plus MERGE_SLASHES (Istio's
//     recommended hardening). Percent-encoded slashes (%2F, %5C) stay
//     encoded, as with Istio's default. The query is not part of the path.
package authz
