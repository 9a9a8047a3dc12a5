package model

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
	corev1 "k8s.io/api/core/v1"
)

// PodUID is the workload resource name of a pod.
func (m *Model) PodUID(ns, name string) string {
	return m.cfg.ClusterID + "//Pod/" + ns + "/" + name
}

// recomputePod rebuilds the workload of the pod with key k (or removes it).
func (m *Model) recomputePod(k string) {
	ns, name, _ := strings.Cut(k, "/")
	uid := m.PodUID(ns, name)
	m.podRecomputes++
	p := m.pods[k]
	if p == nil || !podHasWorkload(p) {
		m.setWaypointDep("pod/"+k, "")
		m.setAddress(uid, nil)
		return
	}
	w := m.buildWorkload(uid, k, p)
	var aliases []string
	if w.NetworkMode != workloadapi.NetworkMode_HOST_NETWORK {
		for _, a := range w.Addresses {
			aliases = append(aliases, m.alias(a))
		}
	}
	r, err := newResource(uid, aliases, &workloadapi.Address{Type: &workloadapi.Address_Workload{Workload: w}})
	if err != nil {
		m.log.Error("build workload", "pod", k, "err", err)
		return
	}
	m.setAddress(uid, r)
}

func (m *Model) alias(ip []byte) string {
	a, _ := netip.AddrFromSlice(ip)
	return m.cfg.Network + "/" + a.String()
}

// podHasWorkload: pods get a workload once they have an IP and until they
// terminate.
func podHasWorkload(p *Pod) bool {
	if len(p.IPs) == 0 {
		return false
	}
	return p.Phase != corev1.PodSucceeded && p.Phase != corev1.PodFailed
}

func (m *Model) buildWorkload(uid, k string, p *Pod) *workloadapi.Workload {
	sa := p.ServiceAccount
	if sa == "" {
		sa = labelServiceAccountFallback
	}
	wtype, wname := workloadOwner(p)
	w := &workloadapi.Workload{
		Uid:               uid,
		Name:              p.Name,
		Namespace:         p.Namespace,
		Addresses:         podAddresses(p),
		Network:           m.cfg.Network,
		TrustDomain:       m.cfg.TrustDomain,
		ServiceAccount:    sa,
		Node:              p.NodeName,
		CanonicalName:     canonicalName(p.Labels, wname),
		CanonicalRevision: canonicalRevision(p.Labels),
		WorkloadType:      wtype,
		WorkloadName:      wname,
		Status:            workloadapi.WorkloadStatus_UNHEALTHY,
		ClusterId:         m.cfg.ClusterID,
	}
	if podReady(p) {
		w.Status = workloadapi.WorkloadStatus_HEALTHY
	}
	if p.HostNetwork {
		w.NetworkMode = workloadapi.NetworkMode_HOST_NETWORK
	} else if m.enrolled(p) {
		w.TunnelProtocol = workloadapi.TunnelProtocol_HBONE
	}
	if _, isWaypoint := p.Labels[LabelGatewayName]; !isWaypoint {
		w.Waypoint = m.waypointFor("pod/"+k, p.Namespace, p.Labels, waypointForWorkload)
	} else {
		m.setWaypointDep("pod/"+k, "")
	}
	w.Services = m.podServices(p)
	w.AuthorizationPolicies = m.podPolicies(p)
	m.advertiseQUIC(w, p)
	return w
}

// enrolled: the pod's own istio.io/dataplane-mode label decides ("none"
// opts out, "ambient" opts in), else its namespace's; sidecar-injected pods
// never are; with RequireRedirection the node agent must also have
// annotated the pod.
func (m *Model) enrolled(p *Pod) bool {
	if _, sidecar := p.Annotations[AnnotationSidecarStatus]; sidecar {
		return false
	}
	mode, ok := p.Labels[LabelDataplaneMode]
	if !ok {
		if n := m.namespaces[p.Namespace]; n != nil {
			mode = n.Labels[LabelDataplaneMode]
		}
	}
	if mode != DataplaneModeAmbient {
		return false
	}
	return !m.cfg.RequireRedirection || p.Annotations[AnnotationRedirection] == redirectionEnabled
}

func podReady(p *Pod) bool {
	return p.Ready && p.DeletionTimestamp == nil
}

func podAddresses(p *Pod) [][]byte {
	var out [][]byte
	for _, s := range p.IPs {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a.Unmap().AsSlice())
		}
	}
	return out
}

// podServices is the port map of every service in the pod's namespace
// whose selector matches the pod, with named target ports resolved against
// the pod's container ports (unresolvable ports are left out).
func (m *Model) podServices(p *Pod) map[string]*workloadapi.PortList {
	var out map[string]*workloadapi.PortList
	for sk := range m.servicesByNS[p.Namespace] {
		s := m.services[sk]
		if !selects(s.Spec.Selector, p.Labels) || !serviceHasResource(s) {
			continue
		}
		pl := &workloadapi.PortList{}
		for _, sp := range s.Spec.Ports {
			if sp.Protocol != "" && sp.Protocol != corev1.ProtocolTCP {
				continue
			}
			target, ok := resolveTargetPort(sp, p)
			if !ok {
				continue
			}
			pl.Ports = append(pl.Ports, &workloadapi.Port{ServicePort: uint32(sp.Port), TargetPort: target, AppProtocol: appProtocol(sp.AppProtocol)})
		}
		if out == nil {
			out = map[string]*workloadapi.PortList{}
		}
		out[s.Namespace+"/"+m.hostname(s)] = pl
	}
	return out
}

func resolveTargetPort(sp corev1.ServicePort, p *Pod) (uint32, bool) {
	tp := sp.TargetPort
	if tp.StrVal == "" {
		if tp.IntVal == 0 {
			return uint32(sp.Port), true
		}
		return uint32(tp.IntVal), true
	}
	for _, np := range p.NamedPorts {
		if np.Name == tp.StrVal {
			return uint32(np.Port), true
		}
	}
	return 0, false
}

// podPolicies lists the workload-selector authorizations (and converted
// PeerAuthentications) that apply to the pod, sorted.
func (m *Model) podPolicies(p *Pod) []string {
	var out []string
	add := func(ns string) {
		for k := range m.authzByNS[ns] {
			ap := m.authz[k]
			if selects(policySelector(ap), p.Labels) && m.authorizations[k] != nil {
				out = append(out, k)
			}
		}
	}
	add(p.Namespace)
	if p.Namespace != m.cfg.RootNamespace {
		add(m.cfg.RootNamespace)
	}
	out = append(out, m.podPeerAuthnPolicies(p)...)
	slices.Sort(out)
	return out
}
