package wds

import (
	"net/netip"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
)

// Endpoints returns every usable endpoint of svc for service port port, for
// callers that choose among them themselves (the waypoint's load
// balancers): the healthy ones (every one when the service allows all) that
// have an address, in workload uid order, each with the address of the
// family of like and its target port resolved as PickEndpoint resolves it.
// The result is a new slice the caller may keep; AppendEndpoints reuses
// the caller's.
func (s *Store) Endpoints(svc *Service, port uint16, like netip.Addr) []Endpoint {
	return s.AppendEndpoints(nil, svc, port, like)
}

// AppendEndpoints appends what Endpoints returns to dst and returns the
// extended slice, so a caller on a per-request path can reuse one buffer
// (dst[:0]) and allocate nothing once it is large enough.
func (s *Store) AppendEndpoints(dst []Endpoint, svc *Service, port uint16, like netip.Addr) []Endpoint {
	s.mu.RLock()
	eps := s.sortedEPs[svc.Key]
	s.mu.RUnlock()
	allowAll := svc.Proto.GetLoadBalancing().GetHealthPolicy() == workloadapi.LoadBalancing_ALLOW_ALL
	if dst == nil {
		dst = make([]Endpoint, 0, len(eps))
	}
	for _, w := range eps {
		if usable(w, allowAll) {
			dst = append(dst, Endpoint{Workload: w, Addr: netip.AddrPortFrom(pickAddr(w.Addrs, like), targetPort(svc, w, port))})
		}
	}
	return dst
}
