package l4authz

import (
	"net/netip"
	"slices"

	"github.com/weftmesh/weft/pkg/identity"
)

// input is a Conn prepared for matching: addresses unmapped and the
// principal formatted at most once.
type input struct {
	src, dst     netip.Addr
	port         uint16
	id           identity.ID
	hasID        bool
	principal    string
	principalSet bool
}

func newInput(c Conn) input {
	return input{src: c.SrcIP.Unmap(), dst: c.DstIP.Unmap(), port: c.DstPort, id: c.Identity, hasID: !c.Identity.IsZero()}
}

// principalString is the peer identity without the spiffe:// scheme, the
// form principals are written in; empty without an identity.
func (in *input) principalString() string {
	if !in.principalSet {
		in.principalSet = true
		if in.hasID {
			in.principal = in.id.TrustDomain + "/ns/" + in.id.Namespace + "/sa/" + in.id.ServiceAccount
		}
	}
	return in.principal
}

// matches reports whether any rule matches. A policy without rules matches
// nothing: an ALLOW policy with no rules therefore denies all.
func (p *Policy) matches(in *input) bool {
	for i := range p.rules {
		if p.rules[i].matches(in) {
			return true
		}
	}
	return false
}

// A rule matches when all its clauses match; a rule without clauses matches
// everything.
func (r *rule) matches(in *input) bool {
	for i := range r.clauses {
		if !r.clauses[i].matches(in) {
			return false
		}
	}
	return true
}

// A clause matches when any of its matches match; a clause without matches
// matches nothing.
func (c *clause) matches(in *input) bool {
	for i := range c.any {
		if c.any[i].matches(in) {
			return true
		}
	}
	return false
}

// A match matches when every field set matches: a positive field when any
// value matches, a not_ field when no value matches. Identity fields never
// match a connection without an identity, so their not_ forms always do.
func (m *match) matches(in *input) bool {
	if len(m.namespaces) > 0 && (!in.hasID || !anyString(m.namespaces, in.id.Namespace)) {
		return false
	}
	if len(m.notNamespaces) > 0 && in.hasID && anyString(m.notNamespaces, in.id.Namespace) {
		return false
	}
	if len(m.principals) > 0 && (!in.hasID || !anyString(m.principals, in.principalString())) {
		return false
	}
	if len(m.notPrincipals) > 0 && in.hasID && anyString(m.notPrincipals, in.principalString()) {
		return false
	}
	if len(m.serviceAccounts) > 0 && (!in.hasID || !anySA(m.serviceAccounts, in.id)) {
		return false
	}
	if len(m.notServiceAccounts) > 0 && in.hasID && anySA(m.notServiceAccounts, in.id) {
		return false
	}
	if len(m.srcIPs) > 0 && !anyPrefix(m.srcIPs, in.src) {
		return false
	}
	if len(m.notSrcIPs) > 0 && anyPrefix(m.notSrcIPs, in.src) {
		return false
	}
	if len(m.dstIPs) > 0 && !anyPrefix(m.dstIPs, in.dst) {
		return false
	}
	if len(m.notDstIPs) > 0 && anyPrefix(m.notDstIPs, in.dst) {
		return false
	}
	if len(m.dstPorts) > 0 && !slices.Contains(m.dstPorts, in.port) {
		return false
	}
	if len(m.notDstPorts) > 0 && slices.Contains(m.notDstPorts, in.port) {
		return false
	}
	return true
}

func anyString(ms []stringMatcher, s string) bool {
	for _, m := range ms {
		if m.matches(s) {
			return true
		}
	}
	return false
}

func anySA(sas []serviceAccount, id identity.ID) bool {
	for _, sa := range sas {
		if sa.namespace == id.Namespace && sa.name == id.ServiceAccount {
			return true
		}
	}
	return false
}

func anyPrefix(ps []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
