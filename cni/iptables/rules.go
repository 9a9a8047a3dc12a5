package iptables

import (
	"fmt"
	"strconv"
)

// Marks, ports and addresses shared with ztunnel and the node agent.
const (
	// ZtunnelMark is the SO_MARK ztunnel sets on every socket it opens in a
	// pod's namespace.
	ZtunnelMark = 0x539
	// ConnMark is the conntrack mark of connections ztunnel accepted.
	ConnMark = 0x111
	// MarkMask selects the bits of the marks Weft owns.
	MarkMask = 0xfff
	// RouteTable is the routing table holding the local default route.
	RouteTable = 100
	// UDPMark marks the application's outbound UDP (CaptureUDP) so that
	// `ip rule fwmark 0x112/0xfff lookup 100` loops it back through lo,
	// where TPROXY hands it to ztunnel's UDP listener.
	UDPMark = 0x112

	OutboundPort = 15001
	InboundPort  = 15006
	HBONEPort    = 15008
	DNSPort      = 15053
	// UDPPort is ztunnel's in-pod UDP listener (127.0.0.1), the TPROXY
	// target of captured outbound UDP.
	UDPPort = 15005
	// UDPListenAddr is the address ztunnel's UDP listener binds and TPROXY
	// delivers to; loopback, so nothing from outside the pod reaches it.
	UDPListenAddr = "127.0.0.1"
	// ProbeSNATAddr is the source address node-originated probes get.
	ProbeSNATAddr = "169.254.7.127"
	// ProbeSNATAddr6 is the IPv6 source address node-originated probes get
	// (the one Istio's node agent uses).
	ProbeSNATAddr6 = "fd16:9254:7127:1337:ffff:ffff:ffff:ffff"

	ChainPrerouting  = "WEFT_PRERT"
	ChainOutput      = "WEFT_OUTPUT"
	ChainPostrouting = "WEFT_POSTRT"
)

// Config selects optional parts of the in-pod rule set.
type Config struct {
	// RedirectDNS sends the pod's DNS queries (UDP and TCP port 53) to
	// ztunnel's DNS proxy on 15053.
	RedirectDNS bool
	// CaptureUDP sends the pod's outbound UDP (except DNS, loopback and
	// ztunnel's own sockets) to ztunnel's UDP listener with TPROXY, so
	// ztunnel can carry it through the mesh with CONNECT-UDP. IPv4 only.
	// Needs the UDP fwmark rule (NetlinkRoutes.CaptureUDP).
	CaptureUDP bool
}

// Chain is a chain Weft owns in a table.
type Chain struct {
	Table, Name string
}

// Rule is one rule: Spec is the iptables argument list after the chain.
type Rule struct {
	Table, Chain string
	Spec         []string
}

// RuleSet is everything one installation consists of.
type RuleSet struct {
	// Chains are created (if missing) and owned: their content is exactly
	// Rules.
	Chains []Chain
	// Jumps are inserted at the top of built-in chains, once each.
	Jumps []Rule
	// Rules are appended, in order, to the owned chains.
	Rules []Rule
}

// rulesFor returns the rules of rs in chain c, in order.
func (rs RuleSet) rulesFor(c Chain) [][]string {
	var out [][]string
	for _, r := range rs.Rules {
		if r.Table == c.Table && r.Chain == c.Name {
			out = append(out, r.Spec)
		}
	}
	return out
}

func hex(v int) string { return fmt.Sprintf("0x%x", v) }

func markMask(v int) string { return hex(v) + "/" + hex(MarkMask) }

func port(p int) string { return strconv.Itoa(p) }

// InPodRuleSet returns the IPv4 rules (iptables) installed in a pod's
// network namespace.
func InPodRuleSet(cfg Config) RuleSet {
	rs := inPodRuleSet(cfg, "127.0.0.1/32", ProbeSNATAddr+"/32")
	if cfg.CaptureUDP {
		rs.Rules = append(rs.Rules, udpCaptureRules()...)
	}
	return rs
}

// InPodRuleSet6 returns the IPv6 rules (ip6tables) installed in a pod's
// network namespace: the same chains, marks and ports as InPodRuleSet,
// with ::1 for loopback and ProbeSNATAddr6 for probes.
func InPodRuleSet6(cfg Config) RuleSet {
	cfg.CaptureUDP = false // IPv4 only for now
	return inPodRuleSet(cfg, "::1/128", ProbeSNATAddr6+"/128")
}

func inPodRuleSet(cfg Config, loopback, probe string) RuleSet {
	rs := RuleSet{
		Chains: []Chain{
			{"mangle", ChainPrerouting}, {"mangle", ChainOutput},
			{"nat", ChainPrerouting}, {"nat", ChainOutput},
		},
		Jumps: []Rule{
			{"mangle", "PREROUTING", []string{"-j", ChainPrerouting}},
			{"mangle", "OUTPUT", []string{"-j", ChainOutput}},
			{"nat", "PREROUTING", []string{"-j", ChainPrerouting}},
			{"nat", "OUTPUT", []string{"-j", ChainOutput}},
		},
	}
	add := func(table, chain string, spec ...string) {
		rs.Rules = append(rs.Rules, Rule{table, chain, spec})
	}

	// mangle: remember ztunnel's accepted connections in conntrack and put
	// the mark back on their reply packets so the fwmark rule routes them
	// locally.
	add("mangle", ChainPrerouting, "-m", "mark", "--mark", markMask(ZtunnelMark),
		"-j", "CONNMARK", "--set-xmark", markMask(ConnMark))
	add("mangle", ChainOutput, "-m", "connmark", "--mark", markMask(ConnMark),
		"-j", "CONNMARK", "--restore-mark", "--nfmask", "0xffffffff", "--ctmask", "0xffffffff")

	// nat PREROUTING: inbound.
	add("nat", ChainPrerouting, "-s", probe, "-p", "tcp", "-j", "ACCEPT")
	add("nat", ChainPrerouting, "!", "-d", loopback, "-p", "tcp", "!", "--dport", port(HBONEPort),
		"-m", "mark", "!", "--mark", markMask(ZtunnelMark),
		"-j", "REDIRECT", "--to-ports", port(InboundPort))

	// nat OUTPUT: outbound.
	add("nat", ChainOutput, "-d", probe, "-p", "tcp", "-j", "ACCEPT")
	if cfg.RedirectDNS {
		add("nat", ChainOutput, "!", "-o", "lo", "-p", "udp", "--dport", "53",
			"-m", "mark", "!", "--mark", markMask(ZtunnelMark),
			"-j", "REDIRECT", "--to-ports", port(DNSPort))
		add("nat", ChainOutput, "!", "-d", loopback, "-p", "tcp", "--dport", "53",
			"-m", "mark", "!", "--mark", markMask(ZtunnelMark),
			"-j", "REDIRECT", "--to-ports", port(DNSPort))
	}
	add("nat", ChainOutput, "-p", "tcp", "-m", "mark", "--mark", markMask(ConnMark), "-j", "ACCEPT")
	add("nat", ChainOutput, "!", "-d", loopback, "-o", "lo", "-j", "ACCEPT")
	add("nat", ChainOutput, "!", "-d", loopback, "-p", "tcp",
		"-m", "mark", "!", "--mark", markMask(ZtunnelMark),
		"-j", "REDIRECT", "--to-ports", port(OutboundPort))
	return rs
}

// ProbeSNATBase returns the node-level chain and jump that per-pod probe
// SNAT rules live in.
func ProbeSNATBase() RuleSet {
	return RuleSet{
		Chains: []Chain{{"nat", ChainPostrouting}},
		Jumps:  []Rule{{"nat", "POSTROUTING", []string{"-j", ChainPostrouting}}},
	}
}

// probeComment tags a pod's probe SNAT rule so it can be found again.
func probeComment(uid string) string { return "weft-probe:" + uid }

// ProbeSNATRule6 is ProbeSNATRule for an IPv6 podIP (an ip6tables rule
// SNATing to ProbeSNATAddr6).
func ProbeSNATRule6(podIP, uid string) Rule {
	return Rule{"nat", ChainPostrouting, []string{
		"-d", podIP + "/128", "-p", "tcp", "-m", "owner", "--socket-exists",
		"-m", "comment", "--comment", probeComment(uid),
		"-j", "SNAT", "--to-source", ProbeSNATAddr6,
	}}
}

// ProbeSNATRule returns the node-level rule that SNATs TCP from node-local
// sockets to podIP (an IPv4 address) to ProbeSNATAddr.
func ProbeSNATRule(podIP, uid string) Rule {
	return Rule{"nat", ChainPostrouting, []string{
		"-d", podIP + "/32", "-p", "tcp", "-m", "owner", "--socket-exists",
		"-m", "comment", "--comment", probeComment(uid),
		"-j", "SNAT", "--to-source", ProbeSNATAddr,
	}}
}
