package wds

import (
	"context"
	"net/netip"
	"strings"

	"github.com/weftmesh/weft/pkg/l4authz"
)

// WorkloadByUID returns the workload with uid, or nil.
func (s *Store) WorkloadByUID(uid string) *Workload {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.workloads[uid]
}

// WorkloadByIP returns the workload with address a, or nil.
func (s *Store) WorkloadByIP(a NetAddr) *Workload {
	a.IP = a.IP.Unmap()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byIP[a]
}

// ServiceByVIP returns the service with VIP a, or nil.
func (s *Store) ServiceByVIP(a NetAddr) *Service {
	a.IP = a.IP.Unmap()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byVIP[a]
}

// ServiceByKey returns the service "<namespace>/<hostname>", or nil.
func (s *Store) ServiceByKey(key string) *Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.services[key]
}

// ServicesByHostname returns the services with hostname h (one per
// namespace that defines it).
func (s *Store) ServicesByHostname(h string) []*Service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byHost[h]
}

// Authorizer returns the current policy engine; it never returns nil.
func (s *Store) Authorizer() *l4authz.Engine {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.engine
}

// Lookup returns what address a is in the mesh: a workload, a service, or
// neither (both nil) for a destination outside the mesh.
func (s *Store) Lookup(a NetAddr) (*Workload, *Service) {
	a.IP = a.IP.Unmap()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if svc := s.byVIP[a]; svc != nil {
		return nil, svc
	}
	return s.byIP[a], nil
}

// LookupOnDemand is Lookup that, for an unknown address, subscribes to the
// alias "<network>/<ip>" and waits until the control plane answers with the
// address, answers that it does not exist (the alias is removed), or ctx
// ends. Both results nil means the address is outside the mesh as far as
// ztunnel could learn in time. Without a subscriber it is Lookup.
func (s *Store) LookupOnDemand(ctx context.Context, a NetAddr) (*Workload, *Service) {
	a.IP = a.IP.Unmap()
	box := s.subscriber.Load()
	for first := true; ; first = false {
		s.mu.Lock()
		if svc := s.byVIP[a]; svc != nil {
			s.mu.Unlock()
			return nil, svc
		}
		if w := s.byIP[a]; w != nil {
			s.mu.Unlock()
			return w, nil
		}
		if box == nil || s.missing[a] {
			s.mu.Unlock()
			return nil, nil
		}
		ask := first && !s.requested[a]
		s.requested[a] = true
		changed := s.changed
		s.mu.Unlock()
		if ask {
			box.s.Subscribe(AddressType, a.String())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// parseAlias parses an on-demand alias name "<network>/<ip>".
func parseAlias(name string) (NetAddr, bool) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return NetAddr{}, false
	}
	ip, err := netip.ParseAddr(name[i+1:])
	if err != nil {
		return NetAddr{}, false
	}
	return NetAddr{Network: name[:i], IP: ip.Unmap()}, true
}
