package model

import (
	"net/netip"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// setWaypointDep records that user ("pod/<key>" or "svc/<key>") depends on
// the gateway gw ("" for none), replacing what it depended on before.
func (m *Model) setWaypointDep(user, gw string) {
	if old, ok := m.usesWaypoint[user]; ok {
		if old == gw {
			return
		}
		removeFrom(m.waypointUsers, old, user)
		delete(m.usesWaypoint, user)
	}
	if gw != "" {
		addTo(m.waypointUsers, gw, user)
		m.usesWaypoint[user] = gw
	}
}

// waypointFor resolves the waypoint an object in ns with labels uses, for
// traffic of kind ("service" or "workload"). The object's own
// istio.io/use-waypoint label wins over its namespace's; the value "none"
// opts out. The Gateway must exist, be of class istio-waypoint, and accept
// kind per its istio.io/waypoint-for label (default "service").
func (m *Model) waypointFor(user, ns string, labels map[string]string, kind string) *workloadapi.GatewayAddress {
	name, gwNS := labels[LabelUseWaypoint], labels[LabelUseWaypointNamespace]
	if name == "" {
		if n := m.namespaces[ns]; n != nil {
			name, gwNS = n.Labels[LabelUseWaypoint], n.Labels[LabelUseWaypointNamespace]
		}
	}
	if name == "" || name == waypointForNone {
		m.setWaypointDep(user, "")
		return nil
	}
	if gwNS == "" {
		gwNS = ns
	}
	gk := key(gwNS, name)
	m.setWaypointDep(user, gk)
	gw := m.gateways[gk]
	if gw == nil || gw.Spec.GatewayClassName != WaypointGatewayClass {
		return nil
	}
	switch gw.Labels[LabelWaypointFor] {
	case "", waypointForService:
		if kind != waypointForService {
			return nil
		}
	case waypointForWorkload:
		if kind != waypointForWorkload {
			return nil
		}
	case waypointForAll:
	default:
		return nil
	}
	return m.gatewayAddress(gw)
}

// gatewayAddress is the waypoint's address: its status IP when it has one,
// else its service hostname; the port is its HBONE listener's.
func (m *Model) gatewayAddress(gw *gatewayv1.Gateway) *workloadapi.GatewayAddress {
	port := uint32(defaultHBONEPort)
	for _, l := range gw.Spec.Listeners {
		if l.Protocol == "HBONE" && l.Port != 0 {
			port = uint32(l.Port)
			break
		}
	}
	ga := &workloadapi.GatewayAddress{HboneMtlsPort: port}
	for _, a := range gw.Status.Addresses {
		if a.Type != nil && *a.Type == gatewayv1.IPAddressType {
			if ip, err := netip.ParseAddr(a.Value); err == nil {
				ga.Destination = &workloadapi.GatewayAddress_Address{Address: &workloadapi.NetworkAddress{Network: m.cfg.Network, Address: ip.AsSlice()}}
				return ga
			}
		}
	}
	host := gw.Name + "." + gw.Namespace + ".svc." + m.cfg.DomainSuffix
	for _, a := range gw.Status.Addresses {
		if a.Type != nil && *a.Type == gatewayv1.HostnameAddressType {
			host = a.Value
			break
		}
	}
	ga.Destination = &workloadapi.GatewayAddress_Hostname{Hostname: &workloadapi.NamespacedHostname{Namespace: gw.Namespace, Hostname: host}}
	return ga
}
