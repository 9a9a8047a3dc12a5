package model

import (
	"slices"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"google.golang.org/protobuf/types/known/emptypb"
	secv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
)

// PeerAuthentication in ambient: STRICT becomes a DENY of every connection
// without a peer principal; PERMISSIVE and DISABLE allow plaintext. The
// most specific policy wins (workload selector, then namespace, then the
// root namespace), and an UNSET mode inherits from the next level.
//
// A workload whose effective mode is STRICT lists the shared static policy
// "<root>/istio_converted_static_strict". A workload-selector policy with
// port-level modes gets its own "<ns>/converted_peer_authentication_<name>"
// that denies plaintext only on its strict ports.

func presenceMatch() []*securityapi.StringMatch {
	return []*securityapi.StringMatch{{MatchType: &securityapi.StringMatch_Presence{Presence: &emptypb.Empty{}}}}
}

func (m *Model) staticStrictName() string { return key(m.cfg.RootNamespace, StaticStrictPolicyName) }

// oldestPeerAuthn returns the oldest (then first by name) policy of ns for
// which match is true.
func (m *Model) oldestPeerAuthn(ns string, match func(*securityv1.PeerAuthentication) bool) *securityv1.PeerAuthentication {
	var best *securityv1.PeerAuthentication
	for _, pa := range m.peerAuthn {
		if pa.Namespace != ns || !match(pa) {
			continue
		}
		if best == nil || pa.CreationTimestamp.Before(&best.CreationTimestamp) ||
			(pa.CreationTimestamp.Equal(&best.CreationTimestamp) && pa.Name < best.Name) {
			best = pa
		}
	}
	return best
}

func noSelector(pa *securityv1.PeerAuthentication) bool {
	return len(pa.Spec.GetSelector().GetMatchLabels()) == 0
}

// inheritedMode is the mode of ns's namespace-wide policy, else the mesh's.
func (m *Model) inheritedMode(ns string) secv1beta1.PeerAuthentication_MutualTLS_Mode {
	if pa := m.oldestPeerAuthn(ns, noSelector); pa != nil {
		if mode := pa.Spec.GetMtls().GetMode(); mode != secv1beta1.PeerAuthentication_MutualTLS_UNSET {
			return mode
		}
	}
	if ns != m.cfg.RootNamespace {
		if pa := m.oldestPeerAuthn(m.cfg.RootNamespace, noSelector); pa != nil {
			return pa.Spec.GetMtls().GetMode()
		}
	}
	return secv1beta1.PeerAuthentication_MutualTLS_PERMISSIVE
}

func (m *Model) workloadPeerAuthn(p *Pod) *securityv1.PeerAuthentication {
	return m.oldestPeerAuthn(p.Namespace, func(pa *securityv1.PeerAuthentication) bool {
		return selects(pa.Spec.GetSelector().GetMatchLabels(), p.Labels)
	})
}

// podPeerAuthnPolicies lists the converted policy names that apply to p.
func (m *Model) podPeerAuthnPolicies(p *Pod) []string {
	mode := secv1beta1.PeerAuthentication_MutualTLS_UNSET
	if pa := m.workloadPeerAuthn(p); pa != nil {
		if len(pa.Spec.GetPortLevelMtls()) > 0 {
			n := key(pa.Namespace, ConvertedPeerAuthnPrefix+pa.Name)
			if m.authorizations[n] != nil {
				return []string{n}
			}
			return nil
		}
		mode = pa.Spec.GetMtls().GetMode()
	}
	if mode == secv1beta1.PeerAuthentication_MutualTLS_UNSET {
		mode = m.inheritedMode(p.Namespace)
	}
	if mode == secv1beta1.PeerAuthentication_MutualTLS_STRICT && m.authorizations[m.staticStrictName()] != nil {
		return []string{m.staticStrictName()}
	}
	return nil
}

// recomputePeerAuthnPolicies rebuilds every PeerAuthentication-derived
// authorization.
func (m *Model) recomputePeerAuthnPolicies() {
	want := map[string]*securityapi.Authorization{}
	anyStrict := false
	for _, pa := range m.peerAuthn {
		if pa.Spec.GetMtls().GetMode() == secv1beta1.PeerAuthentication_MutualTLS_STRICT {
			anyStrict = true
		}
		if noSelector(pa) || len(pa.Spec.GetPortLevelMtls()) == 0 {
			continue
		}
		base := pa.Spec.GetMtls().GetMode()
		if base == secv1beta1.PeerAuthentication_MutualTLS_UNSET {
			base = m.inheritedMode(pa.Namespace)
		}
		match := &securityapi.Match{NotPrincipals: presenceMatch()}
		for port, mt := range pa.Spec.GetPortLevelMtls() {
			mode := mt.GetMode()
			if mode == secv1beta1.PeerAuthentication_MutualTLS_UNSET {
				mode = base
			}
			switch {
			case base == secv1beta1.PeerAuthentication_MutualTLS_STRICT && mode != base:
				match.NotDestinationPorts = append(match.NotDestinationPorts, port)
			case base != secv1beta1.PeerAuthentication_MutualTLS_STRICT && mode == secv1beta1.PeerAuthentication_MutualTLS_STRICT:
				match.DestinationPorts = append(match.DestinationPorts, port)
			}
		}
		if base != secv1beta1.PeerAuthentication_MutualTLS_STRICT && len(match.DestinationPorts) == 0 {
			continue // nothing strict
		}
		slices.Sort(match.DestinationPorts)
		slices.Sort(match.NotDestinationPorts)
		name := ConvertedPeerAuthnPrefix + pa.Name
		want[key(pa.Namespace, name)] = &securityapi.Authorization{
			Name: name, Namespace: pa.Namespace, Scope: securityapi.Scope_WORKLOAD_SELECTOR, Action: securityapi.Action_DENY,
			Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{match}}}}},
		}
	}
	if anyStrict {
		want[m.staticStrictName()] = &securityapi.Authorization{
			Name: StaticStrictPolicyName, Namespace: m.cfg.RootNamespace, Scope: securityapi.Scope_WORKLOAD_SELECTOR, Action: securityapi.Action_DENY,
			Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{{NotPrincipals: presenceMatch()}}}}}},
		}
	}
	for n := range m.paConverted {
		if _, ok := want[n]; !ok {
			delete(m.paConverted, n)
			m.setAuthorization(n, nil)
		}
	}
	for n, a := range want {
		r, err := newResource(n, nil, a)
		if err != nil {
			m.log.Error("build converted peer authentication", "name", n, "err", err)
			continue
		}
		m.paConverted[n] = struct{}{}
		m.setAuthorization(n, r)
	}
}
