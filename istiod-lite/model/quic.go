package model

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/wds"
)

// The HBONE-over-QUIC setting (docs/quic.md).
const (
	// LabelHBONETransport on a namespace chooses the HBONE transport of its
	// workloads: HBONETransportQUIC advertises QUIC, HBONETransportH2 opts
	// the namespace out when Config.HBONEQUIC turns QUIC on mesh-wide.
	LabelHBONETransport = "weft.dev/hbone-transport"
	HBONETransportQUIC  = "quic"
	HBONETransportH2    = "h2"
	// LabelZtunnelQUIC marks a ztunnel pod that serves HBONE over QUIC
	// (value "true"); a workload is advertised only while its node has one.
	LabelZtunnelQUIC = "weft.dev/ztunnel-quic"
)

// quicWanted reports whether the namespace setting asks for QUIC for ns's
// workloads.
func (m *Model) quicWanted(ns string) bool {
	if n := m.namespaces[ns]; n != nil {
		switch n.Labels[LabelHBONETransport] {
		case HBONETransportQUIC:
			return true
		case HBONETransportH2:
			return false
		}
	}
	return m.cfg.HBONEQUIC
}

// advertiseQUIC adds the QUIC extension to w when its namespace asks for
// it, it is a captured pod (HBONE, not a waypoint: waypoints speak HTTP/2
// only) and its node's ztunnel serves QUIC.
func (m *Model) advertiseQUIC(w *workloadapi.Workload, p *Pod) {
	if w.TunnelProtocol != workloadapi.TunnelProtocol_HBONE {
		return
	}
	if _, isWaypoint := p.Labels[LabelGatewayName]; isWaypoint {
		return
	}
	if !m.quicWanted(p.Namespace) || len(m.quicNodes[p.NodeName]) == 0 {
		return
	}
	w.Extensions = append(w.Extensions, &workloadapi.Extension{Name: wds.ExtensionHBONEQUIC})
}

// servesQUIC: a ztunnel pod that says it serves QUIC and is not finished.
func servesQUIC(p *Pod) bool {
	return p != nil && p.NodeName != "" && p.Labels[LabelZtunnelQUIC] == "true" &&
		p.DeletionTimestamp == nil && p.Phase != corev1.PodSucceeded && p.Phase != corev1.PodFailed
}

// trackQUICNode records whether pod k (now p, nil when deleted; old
// before) serves QUIC on its node, and re-publishes the node's workloads
// when the node gains its first or loses its last such ztunnel.
func (m *Model) trackQUICNode(k string, old, p *Pod) {
	var changed []string
	if old != nil && inSet(m.quicNodes[old.NodeName], k) && (!servesQUIC(p) || p.NodeName != old.NodeName) {
		delete(m.quicNodes[old.NodeName], k)
		if len(m.quicNodes[old.NodeName]) == 0 {
			delete(m.quicNodes, old.NodeName)
			changed = append(changed, old.NodeName)
		}
	}
	if servesQUIC(p) && !inSet(m.quicNodes[p.NodeName], k) {
		if len(m.quicNodes[p.NodeName]) == 0 {
			changed = append(changed, p.NodeName)
		}
		addTo(m.quicNodes, p.NodeName, k)
	}
	for _, node := range changed {
		for pk, pod := range m.pods {
			if pod.NodeName == node && pk != k {
				m.recomputePod(pk)
			}
		}
	}
}

func inSet(s set, k string) bool {
	_, ok := s[k]
	return ok
}
