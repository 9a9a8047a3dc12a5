package l7

import (
	"cmp"
	"slices"
	"strings"

	"github.com/weftmesh/weft/pkg/api/l7api"
	corev1 "k8s.io/api/core/v1"
)

// portProtocols maps each Service port with a declared protocol — its
// appProtocol, else its name's prefix before "-" (Istio's convention) — to
// that protocol. Ports without one are left out: the waypoint sniffs them.
func portProtocols(s *corev1.Service) map[uint32]l7api.Protocol {
	out := map[uint32]l7api.Protocol{}
	for _, p := range s.Spec.Ports {
		proto := l7api.Protocol_PROTOCOL_UNSPECIFIED
		if p.AppProtocol != nil {
			proto = protocolOf(*p.AppProtocol)
		}
		if proto == l7api.Protocol_PROTOCOL_UNSPECIFIED {
			prefix, _, _ := strings.Cut(p.Name, "-")
			proto = protocolOf(prefix)
		}
		if proto != l7api.Protocol_PROTOCOL_UNSPECIFIED {
			out[uint32(p.Port)] = proto
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// protocolOf maps an appProtocol or port name prefix to a protocol.
func protocolOf(name string) l7api.Protocol {
	switch strings.ToLower(name) {
	case "http", "http1", "kubernetes.io/ws":
		return l7api.Protocol_HTTP
	case "http2", "h2c", "kubernetes.io/h2c":
		return l7api.Protocol_HTTP2
	case "grpc", "grpc-web":
		return l7api.Protocol_GRPC
	case "tcp", "tls", "https", "kubernetes.io/wss", "mongo", "mysql", "redis", "udp":
		return l7api.Protocol_TCP
	}
	return l7api.Protocol_PROTOCOL_UNSPECIFIED
}

// entry is one route with what orders it.
type entry struct {
	route *l7api.Route
	set   *routeSet
	index int // position within its routeSet (rule, then match order)
}

// buildRouteConfig assembles the RouteConfig of Service svc from the route
// sets attached to it, in Gateway API precedence order (see lessRoute).
func (c Config) buildRouteConfig(svc *corev1.Service, sets []*routeSet) *l7api.RouteConfig {
	key := svc.Namespace + "/" + svc.Name
	var es []entry
	for _, rs := range sets {
		for _, pa := range rs.parents {
			if pa.service != key {
				continue
			}
			for i, r := range rs.routes {
				if pa.port != 0 {
					r = cloneRoute(r)
					r.Port = pa.port
				}
				es = append(es, entry{route: r, set: rs, index: i})
			}
		}
	}
	slices.SortStableFunc(es, compareEntries)
	out := &l7api.RouteConfig{Service: c.serviceRef(svc.Namespace, svc.Name), PortProtocols: portProtocols(svc)}
	for _, e := range es {
		out.Routes = append(out.Routes, e.route)
	}
	return out
}

// compareEntries orders routes by Gateway API precedence: exact path,
// then regular-expression path (longer first), then path prefix (longer
// first); then a method match; then more header matches; then more
// query-parameter matches; then a port-specific route before a port-less
// one; then the older route object, then its namespace/name; then rule
// and match order within the object.
func compareEntries(a, b entry) int {
	ma, mb := a.route.GetMatch(), b.route.GetMatch()
	if c := cmp.Compare(pathRank(ma.GetPath()), pathRank(mb.GetPath())); c != 0 {
		return c
	}
	if c := cmp.Compare(len(mb.GetPath().GetValue()), len(ma.GetPath().GetValue())); c != 0 {
		return c
	}
	if c := cmp.Compare(boolRank(ma.GetMethod() != ""), boolRank(mb.GetMethod() != "")); c != 0 {
		return c
	}
	if c := cmp.Compare(len(mb.GetHeaders()), len(ma.GetHeaders())); c != 0 {
		return c
	}
	if c := cmp.Compare(len(mb.GetQueryParams()), len(ma.GetQueryParams())); c != 0 {
		return c
	}
	if c := cmp.Compare(boolRank(a.route.GetPort() != 0), boolRank(b.route.GetPort() != 0)); c != 0 {
		return c
	}
	if a.set != b.set {
		if c := a.set.created.Compare(b.set.created); c != 0 {
			return c
		}
		if c := strings.Compare(a.set.ref.Namespace+"/"+a.set.ref.Name, b.set.ref.Namespace+"/"+b.set.ref.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.set.ref.Kind, b.set.ref.Kind); c != 0 {
			return c
		}
	}
	return cmp.Compare(a.index, b.index)
}

func pathRank(p *l7api.PathMatch) int {
	switch p.GetKind() {
	case l7api.PathMatch_EXACT:
		return 0
	case l7api.PathMatch_REGEX:
		return 1
	}
	return 2
}

// boolRank sorts true first.
func boolRank(b bool) int {
	if b {
		return 0
	}
	return 1
}
