package wds

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
)

// Endpoint is one chosen backend of a service.
type Endpoint struct {
	Workload *Workload
	// Addr is the workload address and target port to connect to.
	Addr netip.AddrPort
}

// ErrNoEndpoints is returned when a service has no usable endpoint.
var ErrNoEndpoints = errors.New("no healthy endpoints")

// defaultPreference is the locality failover order used when the service
// names none and the client's locality is known.
var defaultPreference = []workloadapi.LoadBalancing_Scope{
	workloadapi.LoadBalancing_REGION, workloadapi.LoadBalancing_ZONE, workloadapi.LoadBalancing_SUBZONE,
}

// PickEndpoint chooses an endpoint of svc for service port port as seen
// from src (nil when unknown). Only healthy endpoints are used unless the
// service allows all; among those it prefers the ones sharing the most of
// src's locality (region, then zone, then subzone, or the service's
// routing preference; in STRICT mode only full matches), and rotates round
// robin within that set. The target port is the workload's override for the
// service, else the service's, else port itself.
func (s *Store) PickEndpoint(svc *Service, port uint16, src *Workload, family netip.Addr) (Endpoint, error) {
	s.mu.RLock()
	eps := s.sortedEPs[svc.Key]
	rr := s.rr[svc.Key]
	s.mu.RUnlock()

	lb := svc.Proto.GetLoadBalancing()
	allowAll := lb.GetHealthPolicy() == workloadapi.LoadBalancing_ALLOW_ALL
	prefs := lb.GetRoutingPreference()
	strict := lb.GetMode() == workloadapi.LoadBalancing_STRICT
	if len(prefs) == 0 && src != nil && src.Proto.GetLocality() != nil {
		prefs = defaultPreference
	}
	rank := func(w *Workload) int {
		if src == nil {
			return 0
		}
		return localityRank(prefs, src, w)
	}

	// Two passes instead of collecting candidates: this runs for every
	// outbound connection to a service and must not allocate. The first
	// finds the best rank and how many endpoints share it, the second
	// takes the round robin's pick among them.
	best, count := -1, 0
	for _, w := range eps {
		if !usable(w, allowAll) {
			continue
		}
		r := rank(w)
		if strict && r < len(prefs) {
			continue
		}
		switch {
		case r > best:
			best, count = r, 1
		case r == best:
			count++
		}
	}
	if count == 0 {
		return Endpoint{}, fmt.Errorf("service %s: %w", svc.Key, ErrNoEndpoints)
	}
	var n uint64
	if rr != nil {
		n = rr.Add(1) - 1
	}
	i := n % uint64(count)
	for _, w := range eps {
		if !usable(w, allowAll) || rank(w) != best {
			continue
		}
		if i == 0 {
			return Endpoint{Workload: w, Addr: netip.AddrPortFrom(pickAddr(w.Addrs, family), targetPort(svc, w, port))}, nil
		}
		i--
	}
	// Unreachable: the store's endpoint lists are never modified in place.
	return Endpoint{}, fmt.Errorf("service %s: %w", svc.Key, ErrNoEndpoints)
}

// usable reports whether w may be sent traffic: it has an address and is
// healthy, or the service allows every endpoint. PickEndpoint and
// Endpoints share it so the two never disagree.
func usable(w *Workload, allowAll bool) bool {
	return len(w.Addrs) > 0 && (allowAll || w.Healthy())
}

// localityRank counts how many of prefs, in order, src and w share.
func localityRank(prefs []workloadapi.LoadBalancing_Scope, src, w *Workload) int {
	sl, wl := src.Proto.GetLocality(), w.Proto.GetLocality()
	n := 0
	for _, p := range prefs {
		var same bool
		switch p {
		case workloadapi.LoadBalancing_REGION:
			same = sl.GetRegion() == wl.GetRegion()
		case workloadapi.LoadBalancing_ZONE:
			same = sl.GetZone() == wl.GetZone()
		case workloadapi.LoadBalancing_SUBZONE:
			same = sl.GetSubzone() == wl.GetSubzone()
		case workloadapi.LoadBalancing_NODE:
			same = src.Node() == w.Node()
		case workloadapi.LoadBalancing_CLUSTER:
			same = src.Proto.GetClusterId() == w.Proto.GetClusterId()
		case workloadapi.LoadBalancing_NETWORK:
			same = src.Proto.GetNetwork() == w.Proto.GetNetwork()
		}
		if !same {
			break
		}
		n++
	}
	return n
}

func targetPort(svc *Service, w *Workload, port uint16) uint16 {
	if pl, ok := w.Proto.GetServices()[svc.Key]; ok {
		for _, p := range pl.GetPorts() {
			if p.GetServicePort() == uint32(port) && p.GetTargetPort() != 0 {
				return uint16(p.GetTargetPort())
			}
		}
	}
	if tp, ok := svc.TargetPort(port); ok {
		return tp
	}
	return port
}

// pickAddr prefers an address of the same family as like.
func pickAddr(addrs []netip.Addr, like netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a.Is4() == like.Unmap().Is4() {
			return a
		}
	}
	return addrs[0]
}

// EndpointIdentities returns the distinct identities of the workloads
// backing the service key, sorted by uid of their first workload.
func (s *Store) EndpointIdentities(key string) []identity.ID {
	s.mu.RLock()
	eps := s.sortedEPs[key]
	s.mu.RUnlock()
	seen := map[identity.ID]bool{}
	var out []identity.ID
	for _, w := range eps {
		if !seen[w.Identity] {
			seen[w.Identity] = true
			out = append(out, w.Identity)
		}
	}
	return out
}
