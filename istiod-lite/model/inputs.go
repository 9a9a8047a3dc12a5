package model

import (
	"maps"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// selects reports whether a non-empty selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// UpsertNamespace records a namespace add or update.
func (m *Model) UpsertNamespace(ns *corev1.Namespace) {
	m.update(func() {
		old := m.namespaces[ns.Name]
		m.namespaces[ns.Name] = ns
		if old != nil && sameMeshLabels(old.Labels, ns.Labels) {
			return
		}
		m.recomputeNamespace(ns.Name)
	})
}

// DeleteNamespace records a namespace deletion.
func (m *Model) DeleteNamespace(name string) {
	m.update(func() {
		if _, ok := m.namespaces[name]; !ok {
			return
		}
		delete(m.namespaces, name)
		m.recomputeNamespace(name)
	})
}

func sameMeshLabels(a, b map[string]string) bool {
	for _, l := range []string{LabelDataplaneMode, LabelUseWaypoint, LabelUseWaypointNamespace, LabelHBONETransport} {
		if a[l] != b[l] {
			return false
		}
	}
	return true
}

func (m *Model) recomputeNamespace(ns string) {
	for k := range m.podsByNS[ns] {
		m.recomputePod(k)
	}
	for k := range m.servicesByNS[ns] {
		m.recomputeService(k)
	}
}

// UpsertPod records a pod add or update.
func (m *Model) UpsertPod(p *corev1.Pod) { m.UpsertCompactPod(PodFrom(p)) }

// UpsertCompactPod records a pod add or update in compact form.
func (m *Model) UpsertCompactPod(p *Pod) {
	m.update(func() {
		k := key(p.Namespace, p.Name)
		old := m.pods[k]
		m.pods[k] = p
		addTo(m.podsByNS, p.Namespace, k)
		m.recomputePod(k)
		m.trackQUICNode(k, old, p)
	})
}

// DeletePod records a pod deletion.
func (m *Model) DeletePod(ns, name string) {
	m.update(func() {
		k := key(ns, name)
		old, ok := m.pods[k]
		if !ok {
			return
		}
		delete(m.pods, k)
		removeFrom(m.podsByNS, ns, k)
		m.recomputePod(k)
		m.trackQUICNode(k, old, nil)
	})
}

// UpsertService records a service add or update.
func (m *Model) UpsertService(s *corev1.Service) {
	m.update(func() {
		k := key(s.Namespace, s.Name)
		old := m.services[k]
		m.services[k] = s
		addTo(m.servicesByNS, s.Namespace, k)
		m.recomputeService(k)
		var oldSel map[string]string
		if old != nil {
			oldSel = old.Spec.Selector
		}
		m.recomputeSelected(s.Namespace, oldSel, s.Spec.Selector)
		for sk := range m.slicesBySvc[k] {
			m.recomputeSlice(sk)
		}
	})
}

// DeleteService records a service deletion.
func (m *Model) DeleteService(ns, name string) {
	m.update(func() {
		k := key(ns, name)
		old, ok := m.services[k]
		if !ok {
			return
		}
		delete(m.services, k)
		removeFrom(m.servicesByNS, ns, k)
		m.recomputeService(k)
		m.recomputeSelected(ns, old.Spec.Selector, nil)
		for sk := range m.slicesBySvc[k] {
			m.recomputeSlice(sk)
		}
	})
}

// recomputeSelected recomputes the pods of ns selected by either selector.
func (m *Model) recomputeSelected(ns string, a, b map[string]string) {
	if len(a) == 0 && len(b) == 0 {
		return
	}
	for k := range m.podsByNS[ns] {
		p := m.pods[k]
		if selects(a, p.Labels) || selects(b, p.Labels) {
			m.recomputePod(k)
		}
	}
}

// UpsertEndpointSlice records an EndpointSlice add or update. Only slices of
// selector-less services produce workloads.
func (m *Model) UpsertEndpointSlice(s *discoveryv1.EndpointSlice) {
	m.update(func() {
		k := key(s.Namespace, s.Name)
		if old := m.slices[k]; old != nil {
			removeFrom(m.slicesBySvc, key(old.Namespace, old.Labels[discoveryv1.LabelServiceName]), k)
		}
		m.slices[k] = s
		if svc := s.Labels[discoveryv1.LabelServiceName]; svc != "" {
			addTo(m.slicesBySvc, key(s.Namespace, svc), k)
		}
		m.recomputeSlice(k)
	})
}

// DeleteEndpointSlice records an EndpointSlice deletion.
func (m *Model) DeleteEndpointSlice(ns, name string) {
	m.update(func() {
		k := key(ns, name)
		old, ok := m.slices[k]
		if !ok {
			return
		}
		delete(m.slices, k)
		removeFrom(m.slicesBySvc, key(ns, old.Labels[discoveryv1.LabelServiceName]), k)
		m.recomputeSlice(k)
	})
}

// UpsertGateway records a Gateway add or update.
func (m *Model) UpsertGateway(g *gatewayv1.Gateway) {
	m.update(func() {
		k := key(g.Namespace, g.Name)
		m.gateways[k] = g
		m.recomputeWaypointUsers(k)
	})
}

// DeleteGateway records a Gateway deletion.
func (m *Model) DeleteGateway(ns, name string) {
	m.update(func() {
		k := key(ns, name)
		if _, ok := m.gateways[k]; !ok {
			return
		}
		delete(m.gateways, k)
		m.recomputeWaypointUsers(k)
	})
}

func (m *Model) recomputeWaypointUsers(gw string) {
	for _, u := range keysOf(m.waypointUsers[gw]) {
		kind, k := u[:3], u[4:]
		if kind == "pod" {
			m.recomputePod(k)
		} else {
			m.recomputeService(k)
		}
	}
}

// UpsertAuthorizationPolicy records an AuthorizationPolicy add or update.
func (m *Model) UpsertAuthorizationPolicy(p *securityv1.AuthorizationPolicy) {
	m.update(func() {
		k := key(p.Namespace, p.Name)
		old := m.authz[k]
		m.authz[k] = p
		addTo(m.authzByNS, p.Namespace, k)
		m.recomputeAuthorization(k)
		m.recomputePolicyTargets(p.Namespace, policySelector(old), policySelector(p))
	})
}

// DeleteAuthorizationPolicy records an AuthorizationPolicy deletion.
func (m *Model) DeleteAuthorizationPolicy(ns, name string) {
	m.update(func() {
		k := key(ns, name)
		old, ok := m.authz[k]
		if !ok {
			return
		}
		delete(m.authz, k)
		removeFrom(m.authzByNS, ns, k)
		m.recomputeAuthorization(k)
		m.recomputePolicyTargets(ns, policySelector(old), nil)
	})
}

func policySelector(p *securityv1.AuthorizationPolicy) map[string]string {
	if p == nil {
		return nil
	}
	return p.Spec.GetSelector().GetMatchLabels()
}

// recomputePolicyTargets recomputes pods a workload-selector policy in ns
// selects (in every namespace for the root namespace).
func (m *Model) recomputePolicyTargets(ns string, a, b map[string]string) {
	if ns != m.cfg.RootNamespace {
		m.recomputeSelected(ns, a, b)
		return
	}
	for n := range m.podsByNS {
		m.recomputeSelected(n, a, b)
	}
}

func (m *Model) recomputeAuthorization(k string) {
	p := m.authz[k]
	if p == nil {
		m.setAuthorization(k, nil)
		return
	}
	a := TranslateAuthorizationPolicy(p, m.cfg.RootNamespace)
	if a == nil {
		m.setAuthorization(k, nil)
		return
	}
	r, err := newResource(k, nil, a)
	if err != nil {
		m.log.Error("translate authorization policy", "policy", k, "err", err)
		m.setAuthorization(k, nil)
		return
	}
	m.setAuthorization(k, r)
}

// UpsertPeerAuthentication records a PeerAuthentication add or update.
func (m *Model) UpsertPeerAuthentication(p *securityv1.PeerAuthentication) {
	m.update(func() {
		m.peerAuthn[key(p.Namespace, p.Name)] = p
		m.recomputePeerAuthn(p.Namespace)
	})
}

// DeletePeerAuthentication records a PeerAuthentication deletion.
func (m *Model) DeletePeerAuthentication(ns, name string) {
	m.update(func() {
		k := key(ns, name)
		if _, ok := m.peerAuthn[k]; !ok {
			return
		}
		delete(m.peerAuthn, k)
		m.recomputePeerAuthn(ns)
	})
}

// recomputePeerAuthn refreshes the converted policies (few, recomputed
// together) and the workloads of ns, or of every namespace for the root.
func (m *Model) recomputePeerAuthn(ns string) {
	m.recomputePeerAuthnPolicies()
	if ns == m.cfg.RootNamespace {
		for n := range m.podsByNS {
			for k := range m.podsByNS[n] {
				m.recomputePod(k)
			}
		}
		return
	}
	for k := range m.podsByNS[ns] {
		m.recomputePod(k)
	}
}

func keysOf(s set) []string {
	out := make([]string, 0, len(s))
	for k := range maps.Keys(s) {
		out = append(out, k)
	}
	return out
}
