package l4authz

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/weftmesh/weft/pkg/api/securityapi"
)

// Policy is one compiled Authorization. It is immutable and safe for
// concurrent use.
type Policy struct {
	// Key is the policy's xDS name, "<namespace>/<name>".
	Key       string
	Name      string
	Namespace string
	Scope     securityapi.Scope
	Action    securityapi.Action
	DryRun    bool
	rules     []rule
}

type rule struct{ clauses []clause }

type clause struct{ any []match }

type match struct {
	namespaces, notNamespaces           []stringMatcher
	principals, notPrincipals           []stringMatcher
	srcIPs, notSrcIPs                   []netip.Prefix
	dstIPs, notDstIPs                   []netip.Prefix
	dstPorts, notDstPorts               []uint16
	serviceAccounts, notServiceAccounts []serviceAccount
}

type serviceAccount struct{ namespace, name string }

type stringKind uint8

const (
	kindExact stringKind = iota
	kindPrefix
	kindSuffix
	kindPresence
)

type stringMatcher struct {
	kind  stringKind
	value string
}

func (m stringMatcher) matches(s string) bool {
	switch m.kind {
	case kindExact:
		return s == m.value
	case kindPrefix:
		return strings.HasPrefix(s, m.value)
	case kindSuffix:
		return strings.HasSuffix(s, m.value)
	default:
		return s != ""
	}
}

// Compile validates a and compiles it. The error names the offending field,
// for example "rules[0].clauses[1].matches[0].source_ips[2]: ...", so that it
// can be returned to the control plane in a NACK.
func Compile(a *securityapi.Authorization) (*Policy, error) {
	if a == nil {
		return nil, fmt.Errorf("authorization is empty")
	}
	if a.GetName() == "" {
		return nil, fmt.Errorf("name: must not be empty")
	}
	if a.GetNamespace() == "" {
		return nil, fmt.Errorf("namespace: must not be empty")
	}
	if _, ok := securityapi.Scope_name[int32(a.GetScope())]; !ok {
		return nil, fmt.Errorf("scope: unknown value %d", a.GetScope())
	}
	if _, ok := securityapi.Action_name[int32(a.GetAction())]; !ok {
		return nil, fmt.Errorf("action: unknown value %d", a.GetAction())
	}
	p := &Policy{
		Key:       a.GetNamespace() + "/" + a.GetName(),
		Name:      a.GetName(),
		Namespace: a.GetNamespace(),
		Scope:     a.GetScope(),
		Action:    a.GetAction(),
		DryRun:    a.GetDryRun(),
	}
	for ri, r := range a.GetRules() {
		var cr rule
		for ci, c := range r.GetClauses() {
			var cc clause
			for mi, m := range c.GetMatches() {
				cm, err := compileMatch(m, a.GetNamespace())
				if err != nil {
					return nil, fmt.Errorf("rules[%d].clauses[%d].matches[%d].%w", ri, ci, mi, err)
				}
				cc.any = append(cc.any, cm)
			}
			cr.clauses = append(cr.clauses, cc)
		}
		p.rules = append(p.rules, cr)
	}
	return p, nil
}

func compileMatch(m *securityapi.Match, policyNS string) (match, error) {
	var out match
	var err error
	if out.namespaces, err = compileStrings("namespaces", m.GetNamespaces(), false); err != nil {
		return out, err
	}
	if out.notNamespaces, err = compileStrings("not_namespaces", m.GetNotNamespaces(), false); err != nil {
		return out, err
	}
	if out.principals, err = compileStrings("principals", m.GetPrincipals(), true); err != nil {
		return out, err
	}
	if out.notPrincipals, err = compileStrings("not_principals", m.GetNotPrincipals(), true); err != nil {
		return out, err
	}
	if out.srcIPs, err = compilePrefixes("source_ips", m.GetSourceIps()); err != nil {
		return out, err
	}
	if out.notSrcIPs, err = compilePrefixes("not_source_ips", m.GetNotSourceIps()); err != nil {
		return out, err
	}
	if out.dstIPs, err = compilePrefixes("destination_ips", m.GetDestinationIps()); err != nil {
		return out, err
	}
	if out.notDstIPs, err = compilePrefixes("not_destination_ips", m.GetNotDestinationIps()); err != nil {
		return out, err
	}
	if out.dstPorts, err = compilePorts("destination_ports", m.GetDestinationPorts()); err != nil {
		return out, err
	}
	if out.notDstPorts, err = compilePorts("not_destination_ports", m.GetNotDestinationPorts()); err != nil {
		return out, err
	}
	if out.serviceAccounts, err = compileServiceAccounts("service_accounts", m.GetServiceAccounts(), policyNS); err != nil {
		return out, err
	}
	if out.notServiceAccounts, err = compileServiceAccounts("not_service_accounts", m.GetNotServiceAccounts(), policyNS); err != nil {
		return out, err
	}
	return out, nil
}

// compileStrings compiles string matchers. Principals are compared without
// the "spiffe://" scheme, as Istio writes them in AuthorizationPolicy
// ("cluster.local/ns/x/sa/y"); a value given with the scheme is accepted too.
func compileStrings(field string, in []*securityapi.StringMatch, principal bool) ([]stringMatcher, error) {
	out := make([]stringMatcher, 0, len(in))
	for i, s := range in {
		var m stringMatcher
		switch t := s.GetMatchType().(type) {
		case *securityapi.StringMatch_Exact:
			m = stringMatcher{kindExact, t.Exact}
		case *securityapi.StringMatch_Prefix:
			m = stringMatcher{kindPrefix, t.Prefix}
		case *securityapi.StringMatch_Suffix:
			m = stringMatcher{kindSuffix, t.Suffix}
		case *securityapi.StringMatch_Presence:
			m = stringMatcher{kind: kindPresence}
		default:
			return nil, fmt.Errorf("%s[%d]: no match type set (exact, prefix, suffix or presence)", field, i)
		}
		if principal && (m.kind == kindExact || m.kind == kindPrefix) {
			m.value = strings.TrimPrefix(m.value, "spiffe://")
		}
		out = append(out, m)
	}
	return out, nil
}

func compilePrefixes(field string, in []*securityapi.Address) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for i, a := range in {
		addr, ok := netip.AddrFromSlice(a.GetAddress())
		if !ok {
			return nil, fmt.Errorf("%s[%d]: address is %d bytes, want 4 or 16", field, i, len(a.GetAddress()))
		}
		bits := int(a.GetLength())
		if bits > addr.BitLen() {
			return nil, fmt.Errorf("%s[%d]: prefix length %d longer than the %d-bit address %s", field, i, bits, addr.BitLen(), addr)
		}
		if addr.Is4In6() && bits >= 96 {
			addr, bits = addr.Unmap(), bits-96
		}
		out = append(out, netip.PrefixFrom(addr, bits).Masked())
	}
	return out, nil
}

func compilePorts(field string, in []uint32) ([]uint16, error) {
	out := make([]uint16, 0, len(in))
	for i, p := range in {
		if p == 0 || p > 65535 {
			return nil, fmt.Errorf("%s[%d]: port %d out of range 1-65535", field, i, p)
		}
		out = append(out, uint16(p))
	}
	return out, nil
}

func compileServiceAccounts(field string, in []*securityapi.ServiceAccountMatch, policyNS string) ([]serviceAccount, error) {
	out := make([]serviceAccount, 0, len(in))
	for i, sa := range in {
		if sa.GetServiceAccount() == "" {
			return nil, fmt.Errorf("%s[%d]: serviceAccount must not be empty", field, i)
		}
		ns := sa.GetNamespace()
		if ns == "" {
			ns = policyNS
		}
		out = append(out, serviceAccount{namespace: ns, name: sa.GetServiceAccount()})
	}
	return out, nil
}
