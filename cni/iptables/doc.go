// Package iptables builds and installs the redirect rules that put a pod's
// traffic through ztunnel, and the node-level SNAT that lets kubelet probes
// bypass that capture.
//
// In the pod's network namespace (InPod): mangle and nat rules in chains
// WEFT_PRERT and WEFT_OUTPUT send inbound TCP to ztunnel's 15006, outbound
// TCP to 15001 and (optionally) DNS to 15053, skip sockets ztunnel marked
// with 0x539, and carry ztunnel's connections' mark in conntrack (0x111) so
// that `ip rule fwmark 0x111/0xfff lookup 100` with a local default route in
// table 100 keeps replies to ztunnel's spoofed-source connections in the pod.
// For dual-stack pods the same rule set exists for IPv6 (InPodRuleSet6,
// applied through an ip6tables Backend with ::1 as loopback and
// fd16:9254:7127:1337:ffff:ffff:ffff:ffff as the probe source) with
// `ip -6 rule fwmark 0x111/0xfff lookup 100` and a local ::/0 route;
// Redirector.WithIPv6 turns it on. With Config.CaptureUDP (IPv4), the
// application's outbound UDP other than DNS is marked 0x112 in mangle
// OUTPUT, looped through lo by `ip rule fwmark 0x112/0xfff lookup 100`, and
// handed by TPROXY in mangle PREROUTING to ztunnel's UDP listener on
// 127.0.0.1:15005 with its original destination (udp.go). Drift compares what is installed with
// what Apply would install, so drifted rules can be reported and repaired.
// In the node's namespace (ProbeSNAT): TCP from node-local sockets to an
// enrolled pod's IP is SNATed to 169.254.7.127, which the in-pod rules let
// through untouched.
//
// Rule sets are plain data (RuleSet) applied through the small Backend
// interface: go-iptables (nft or legacy, whichever the node uses) in
// production, Recorder in tests, whose Dump is checked against golden files.
// Apply is idempotent and adopts rules left by an earlier run; Remove
// deletes everything Apply created and treats "not found" as success.
package iptables
