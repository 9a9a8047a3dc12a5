package iptables

// udpCaptureRules are the mangle rules of Config.CaptureUDP.
//
// Locally generated packets never traverse PREROUTING, where TPROXY works,
// so the application's outbound UDP is marked in OUTPUT (UDPMark), which
// makes the kernel route it again: the fwmark rule sends it to table 100,
// whose local default route loops it through lo into PREROUTING. There
// TPROXY hands it, original destination intact, to ztunnel's transparent
// listener on UDPListenAddr:UDPPort.
//
// Not captured: replies to flows ztunnel delivered into the pod (their
// connmark was restored to ConnMark just before), ztunnel's own sockets
// (ZtunnelMark), traffic leaving through lo (loopback and the pod's own
// address) and DNS (port 53): ztunnel has no DNS proxy, so DNS keeps going
// straight to the cluster resolver.
func udpCaptureRules() []Rule {
	out := func(spec ...string) Rule { return Rule{"mangle", ChainOutput, spec} }
	return []Rule{
		out("-p", "udp", "-m", "mark", "--mark", markMask(ConnMark), "-j", "RETURN"),
		out("-p", "udp", "-m", "mark", "--mark", markMask(ZtunnelMark), "-j", "RETURN"),
		out("-o", "lo", "-p", "udp", "-j", "RETURN"),
		out("-p", "udp", "--dport", "53", "-j", "RETURN"),
		out("-p", "udp", "-j", "MARK", "--set-xmark", markMask(UDPMark)),
		{"mangle", ChainPrerouting, []string{"-i", "lo", "-p", "udp", "-m", "mark", "--mark", markMask(UDPMark),
			"-j", "TPROXY", "--on-port", port(UDPPort), "--on-ip", UDPListenAddr, "--tproxy-mark", markMask(UDPMark)}},
	}
}
