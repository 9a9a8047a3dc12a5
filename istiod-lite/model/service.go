package model

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func (m *Model) hostname(s *corev1.Service) string {
	return s.Name + "." + s.Namespace + ".svc." + m.cfg.DomainSuffix
}

// serviceHasResource: ExternalName services are DNS aliases, not services
// with endpoints, and get no resource.
func serviceHasResource(s *corev1.Service) bool {
	return s.Spec.Type != corev1.ServiceTypeExternalName
}

// ServiceName is the address resource name of a service.
func (m *Model) ServiceName(s *corev1.Service) string {
	return s.Namespace + "/" + m.hostname(s)
}

// recomputeService rebuilds the service resource of the service key k.
func (m *Model) recomputeService(k string) {
	s := m.services[k]
	if s == nil {
		ns, name, _ := strings.Cut(k, "/")
		m.setWaypointDep("svc/"+k, "")
		m.setAddress(ns+"/"+name+"."+ns+".svc."+m.cfg.DomainSuffix, nil)
		return
	}
	name := m.ServiceName(s)
	if !serviceHasResource(s) {
		m.setWaypointDep("svc/"+k, "")
		m.setAddress(name, nil)
		return
	}
	svc := &workloadapi.Service{
		Name:      s.Name,
		Namespace: s.Namespace,
		Hostname:  m.hostname(s),
		Waypoint:  m.waypointFor("svc/"+k, s.Namespace, s.Labels, waypointForService),
	}
	var aliases []string
	for _, ip := range s.Spec.ClusterIPs {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		svc.Addresses = append(svc.Addresses, &workloadapi.NetworkAddress{Network: m.cfg.Network, Address: a.AsSlice()})
		aliases = append(aliases, m.cfg.Network+"/"+a.String())
	}
	for _, sp := range s.Spec.Ports {
		if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
			continue
		}
		var target uint32
		if sp.TargetPort.StrVal == "" {
			target = uint32(sp.TargetPort.IntVal)
			if target == 0 {
				target = uint32(sp.Port)
			}
		}
		svc.Ports = append(svc.Ports, &workloadapi.Port{ServicePort: uint32(sp.Port), TargetPort: target, AppProtocol: appProtocol(sp.AppProtocol)})
	}
	switch {
	case len(s.Spec.IPFamilies) == 2:
		svc.IpFamilies = workloadapi.IPFamilies_DUAL
	case len(s.Spec.IPFamilies) == 1 && s.Spec.IPFamilies[0] == corev1.IPv6Protocol:
		svc.IpFamilies = workloadapi.IPFamilies_IPV6_ONLY
	case len(s.Spec.IPFamilies) == 1:
		svc.IpFamilies = workloadapi.IPFamilies_IPV4_ONLY
	}
	if td := s.Spec.TrafficDistribution; td != nil && (*td == "PreferClose" || *td == "PreferSameZone") {
		svc.LoadBalancing = &workloadapi.LoadBalancing{
			RoutingPreference: []workloadapi.LoadBalancing_Scope{workloadapi.LoadBalancing_NETWORK, workloadapi.LoadBalancing_REGION, workloadapi.LoadBalancing_ZONE, workloadapi.LoadBalancing_SUBZONE},
			Mode:              workloadapi.LoadBalancing_FAILOVER,
		}
	}
	r, err := newResource(name, aliases, &workloadapi.Address{Type: &workloadapi.Address_Service{Service: svc}})
	if err != nil {
		m.log.Error("build service", "service", k, "err", err)
		return
	}
	m.setAddress(name, r)
}

// recomputeSlice rebuilds the workloads of an EndpointSlice of a
// selector-less service: one per endpoint address that is not a pod (pods
// have their own workloads). They are reached without a tunnel.
func (m *Model) recomputeSlice(k string) {
	var uids []string
	defer func() {
		for _, old := range m.sliceWorkloads[k] {
			if !slices.Contains(uids, old) {
				m.setAddress(old, nil)
			}
		}
		if len(uids) == 0 {
			delete(m.sliceWorkloads, k)
		} else {
			m.sliceWorkloads[k] = uids
		}
	}()
	es := m.slices[k]
	if es == nil {
		return
	}
	svc := m.services[key(es.Namespace, es.Labels[discoveryv1.LabelServiceName])]
	if svc == nil || len(svc.Spec.Selector) > 0 || !serviceHasResource(svc) {
		return
	}
	ports := &workloadapi.PortList{}
	for _, sp := range svc.Spec.Ports {
		for _, ep := range es.Ports {
			if ep.Port == nil || (ep.Protocol != nil && *ep.Protocol != corev1.ProtocolTCP) {
				continue
			}
			if (ep.Name == nil && sp.Name == "") || (ep.Name != nil && *ep.Name == sp.Name) {
				ports.Ports = append(ports.Ports, &workloadapi.Port{ServicePort: uint32(sp.Port), TargetPort: uint32(*ep.Port), AppProtocol: appProtocol(sp.AppProtocol)})
			}
		}
	}
	for _, ep := range es.Endpoints {
		if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" {
			continue
		}
		for _, ip := range ep.Addresses {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				continue
			}
			uid := m.cfg.ClusterID + "/discovery.k8s.io/EndpointSlice/" + es.Namespace + "/" + es.Name + "/" + a.String()
			w := &workloadapi.Workload{
				Uid:               uid,
				Name:              es.Name,
				Namespace:         es.Namespace,
				Addresses:         [][]byte{a.AsSlice()},
				Network:           m.cfg.Network,
				TrustDomain:       m.cfg.TrustDomain,
				ServiceAccount:    labelServiceAccountFallback,
				CanonicalName:     svc.Name,
				CanonicalRevision: "latest",
				WorkloadType:      workloadapi.WorkloadType_POD,
				WorkloadName:      es.Name,
				Services:          map[string]*workloadapi.PortList{m.ServiceName(svc): ports},
				ClusterId:         m.cfg.ClusterID,
			}
			if ep.NodeName != nil {
				w.Node = *ep.NodeName
			}
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				w.Status = workloadapi.WorkloadStatus_UNHEALTHY
			}
			r, err := newResource(uid, []string{m.cfg.Network + "/" + a.String()}, &workloadapi.Address{Type: &workloadapi.Address_Workload{Workload: w}})
			if err != nil {
				continue
			}
			m.setAddress(uid, r)
			uids = append(uids, uid)
		}
	}
}
