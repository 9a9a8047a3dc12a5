package iptables

import (
	"fmt"
	"net/netip"
	"strings"
)

// ProbeSNAT manages the node-level SNAT of node-originated TCP to enrolled
// pods (kubelet probes) to ProbeSNATAddr, or with IPv6 set (and an
// ip6tables Tables) of IPv6 pod addresses to ProbeSNATAddr6. Tables must
// act on the node's network namespace. Methods are idempotent.
type ProbeSNAT struct {
	Tables Backend
	IPv6   bool
}

func (p ProbeSNAT) rule(podIP, uid string) Rule {
	if p.IPv6 {
		return ProbeSNATRule6(podIP, uid)
	}
	return ProbeSNATRule(podIP, uid)
}

func (p ProbeSNAT) checkAddr(s string) error {
	a, err := netip.ParseAddr(s)
	switch {
	case err == nil && p.IPv6 && a.Is6() && !a.Is4In6():
		return nil
	case err == nil && !p.IPv6 && a.Is4():
		return nil
	case p.IPv6:
		return fmt.Errorf("probe snat: %q is not an IPv6 address", s)
	}
	return fmt.Errorf("probe snat: %q is not an IPv4 address", s)
}

// Ensure creates the WEFT_POSTRT chain and its jump from POSTROUTING,
// keeping any per-pod rules already in it.
func (p ProbeSNAT) Ensure() error {
	base := ProbeSNATBase()
	for _, c := range base.Chains {
		ok, err := p.Tables.ChainExists(c.Table, c.Name)
		if err != nil {
			return fmt.Errorf("check chain %s/%s: %w", c.Table, c.Name, err)
		}
		if !ok {
			if err := p.Tables.NewChain(c.Table, c.Name); err != nil {
				return fmt.Errorf("create chain %s/%s: %w", c.Table, c.Name, err)
			}
		}
	}
	return Apply(p.Tables, RuleSet{Jumps: base.Jumps})
}

// Add SNATs probes to the pod with address podIP (of p's family); uid tags
// the rule.
func (p ProbeSNAT) Add(podIP, uid string) error {
	if err := p.checkAddr(podIP); err != nil {
		return err
	}
	r := p.rule(podIP, uid)
	ok, err := p.Tables.Exists(r.Table, r.Chain, r.Spec...)
	if err != nil {
		return fmt.Errorf("check probe snat for %s: %w", podIP, err)
	}
	if ok {
		return nil
	}
	if err := p.Tables.Append(r.Table, r.Chain, r.Spec...); err != nil {
		return fmt.Errorf("add probe snat for %s: %w", podIP, err)
	}
	return nil
}

// Delete removes the pod's rule; a missing rule is not an error.
func (p ProbeSNAT) Delete(podIP, uid string) error {
	if err := p.checkAddr(podIP); err != nil {
		return err
	}
	r := p.rule(podIP, uid)
	if err := p.Tables.DeleteIfExists(r.Table, r.Chain, r.Spec...); err != nil {
		return fmt.Errorf("delete probe snat for %s: %w", podIP, err)
	}
	return nil
}

// List returns the installed per-pod rules as uid → pod IP.
func (p ProbeSNAT) List() (map[string]string, error) {
	ok, err := p.Tables.ChainExists("nat", ChainPostrouting)
	if err != nil || !ok {
		return map[string]string{}, err
	}
	lines, err := p.Tables.List("nat", ChainPostrouting)
	if err != nil {
		return nil, fmt.Errorf("list probe snat rules: %w", err)
	}
	out := map[string]string{}
	for _, l := range lines {
		uid, ip := parseProbeRule(l)
		if uid != "" && ip != "" {
			out[uid] = ip
		}
	}
	return out, nil
}

// RemoveAll deletes the chain, its jump and every per-pod rule.
func (p ProbeSNAT) RemoveAll() error {
	return Remove(p.Tables, ProbeSNATBase())
}

// parseProbeRule extracts uid and IP from an `iptables -S` line of a probe
// rule.
func parseProbeRule(line string) (uid, ip string) {
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "-d":
			ip = strings.TrimSuffix(strings.TrimSuffix(f[i+1], "/32"), "/128")
		case "--comment":
			c := strings.Trim(f[i+1], `"`)
			if after, ok := strings.CutPrefix(c, "weft-probe:"); ok {
				uid = after
			}
		}
	}
	return uid, ip
}
