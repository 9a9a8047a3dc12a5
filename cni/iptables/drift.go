package iptables

import (
	"fmt"
	"strings"
)

// Drift lists how the rules installed through b differ from rs as Apply
// would install it: owned chains missing, rules missing from them or not
// belonging in them, jumps missing. An empty list means rs is in place.
// Drift changes nothing; Apply repairs what it reports.
func Drift(b Backend, rs RuleSet) ([]string, error) {
	var out []string
	present := map[Chain]bool{}
	for _, c := range rs.Chains {
		ok, err := b.ChainExists(c.Table, c.Name)
		if err != nil {
			return nil, fmt.Errorf("check chain %s/%s: %w", c.Table, c.Name, err)
		}
		present[c] = ok
		if !ok {
			out = append(out, fmt.Sprintf("%s/%s: chain missing", c.Table, c.Name))
			continue
		}
		want := rs.rulesFor(c)
		lines, err := b.List(c.Table, c.Name)
		if err != nil {
			return nil, fmt.Errorf("list chain %s/%s: %w", c.Table, c.Name, err)
		}
		have := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "-A ") {
				have++
			}
		}
		found := 0
		for _, r := range want {
			ok, err := b.Exists(c.Table, c.Name, r...)
			if err != nil {
				return nil, fmt.Errorf("check rule in %s/%s: %w", c.Table, c.Name, err)
			}
			if ok {
				found++
				continue
			}
			out = append(out, fmt.Sprintf("%s/%s: rule missing: %s", c.Table, c.Name, strings.Join(r, " ")))
		}
		if extra := have - found; extra > 0 {
			out = append(out, fmt.Sprintf("%s/%s: %d rule(s) that Weft did not install", c.Table, c.Name, extra))
		}
	}
	for _, j := range rs.Jumps {
		target := jumpTarget(j.Spec)
		if target != "" && !present[Chain{j.Table, target}] {
			if _, owned := present[Chain{j.Table, target}]; owned {
				// A jump to a missing chain cannot exist (and iptables
				// cannot even check for one); the chain is reported.
				out = append(out, fmt.Sprintf("%s/%s: jump to %s missing", j.Table, j.Chain, target))
				continue
			}
		}
		ok, err := b.Exists(j.Table, j.Chain, j.Spec...)
		if err != nil {
			return nil, fmt.Errorf("check jump %s/%s: %w", j.Table, j.Chain, err)
		}
		if !ok {
			out = append(out, fmt.Sprintf("%s/%s: jump missing: %s", j.Table, j.Chain, strings.Join(j.Spec, " ")))
		}
	}
	return out, nil
}

// listing returns the `iptables -S` form of every chain rs owns or jumps
// from. Equal listings mean equal rules, so a listing once checked rule by
// rule to be in place proves any namespace with the same listing in place
// with far fewer iptables runs (see Redirector.Check).
func listing(b Backend, rs RuleSet) (string, error) {
	var sb strings.Builder
	seen := map[Chain]bool{}
	chains := append([]Chain{}, rs.Chains...)
	for _, j := range rs.Jumps {
		chains = append(chains, Chain{j.Table, j.Chain})
	}
	for _, c := range chains {
		if seen[c] {
			continue
		}
		seen[c] = true
		lines, err := b.List(c.Table, c.Name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&sb, "*%s\n%s\n", c.Table, strings.Join(lines, "\n"))
	}
	return sb.String(), nil
}

// listing is the iptables listing of both families' rule sets.
func (p InPod) listing() (string, error) {
	s, err := listing(p.Tables, InPodRuleSet(p.Config))
	if err != nil || !p.ipv6() {
		return s, err
	}
	s6, err := listing(p.Tables6, InPodRuleSet6(p.Config))
	return s + "#ipv6\n" + s6, err
}

// routeDrift is the routing part of Drift (netlink only, cheap).
func (p InPod) routeDrift() ([]string, error) {
	out, err := p.Routes.Drift()
	if err != nil || !p.ipv6() {
		return out, err
	}
	routes6, err := p.Routes6.Drift()
	if err != nil {
		return nil, fmt.Errorf("ipv6: %w", err)
	}
	for _, d := range routes6 {
		out = append(out, "ipv6 "+d)
	}
	return out, nil
}

// Drift lists what of the pod's capture (routing, then rules; IPv6 parts
// prefixed "ipv6 ") is not as Apply installs it; empty means in place. It
// changes nothing.
func (p InPod) Drift() ([]string, error) {
	out, err := p.Routes.Drift()
	if err != nil {
		return nil, err
	}
	rules, err := Drift(p.Tables, InPodRuleSet(p.Config))
	if err != nil {
		return nil, err
	}
	out = append(out, rules...)
	if !p.ipv6() {
		return out, nil
	}
	routes6, err := p.Routes6.Drift()
	if err != nil {
		return nil, fmt.Errorf("ipv6: %w", err)
	}
	rules6, err := Drift(p.Tables6, InPodRuleSet6(p.Config))
	if err != nil {
		return nil, fmt.Errorf("ipv6: %w", err)
	}
	for _, d := range append(routes6, rules6...) {
		out = append(out, "ipv6 "+d)
	}
	return out, nil
}
