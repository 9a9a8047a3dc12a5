package authz

import (
	"net"
	"net/netip"
	"strings"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// attrs are a request's attributes, derived once per Evaluate.
type attrs struct {
	r            *Request
	principal    string // without "spiffe://"
	hasPrincipal bool
	namespace    string
	hasNamespace bool
	ip           netip.Addr
	host         string
	hostVals     [1]string
	hostNoPort   string
	path         string
}

func (a *attrs) init(r *Request) {
	*a = attrs{r: r, ip: r.SourceIP.Unmap(), host: r.Host, path: NormalizePath(r.Path)}
	a.principal = stripSPIFFE(r.SourcePrincipal)
	a.hasPrincipal = a.principal != ""
	if ns, ok := namespaceOf(a.principal); ok {
		a.namespace, a.hasNamespace = ns, true
	} else if r.SourceNamespace != "" {
		a.namespace, a.hasNamespace = r.SourceNamespace, true
	}
	a.hostVals[0] = a.host
	a.hostNoPort = a.host
	if h, _, err := net.SplitHostPort(a.host); err == nil {
		a.hostNoPort = h
	} else {
		a.hostNoPort = strings.TrimSuffix(strings.TrimPrefix(a.host, "["), "]")
	}
}

// matches reports whether any rule of p matches. For TCP traffic a rule
// with HTTP parts never matches in ALLOW and AUDIT policies and is checked
// without them in DENY policies, as Istio does.
func (a *attrs) matches(p *policy) bool {
	for i := range p.rules {
		r := &p.rules[i]
		if a.r.TCP && r.l4 != nil {
			if p.action != l7api.Action_DENY {
				continue
			}
			r = r.l4
		}
		if a.matchRule(r) {
			return true
		}
	}
	return false
}

func (a *attrs) matchRule(r *rule) bool {
	if len(r.from) > 0 {
		ok := false
		for i := range r.from {
			if a.matchSource(&r.from[i]) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.to) > 0 {
		ok := false
		for i := range r.to {
			if a.matchOperation(&r.to[i]) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range r.when {
		if !a.matchCondition(&r.when[i]) {
			return false
		}
	}
	return true
}

func (a *attrs) matchSource(s *source) bool {
	return s.principals.match(a.principal, a.hasPrincipal, false) &&
		s.namespaces.match(a.namespace, a.hasNamespace, false) &&
		(len(s.ipBlocks) == 0 || containsIP(s.ipBlocks, a.ip)) &&
		(len(s.notIPBlocks) == 0 || !containsIP(s.notIPBlocks, a.ip))
}

func (a *attrs) matchOperation(o *operation) bool {
	return a.matchHost(&o.hosts) &&
		o.methods.match(a.r.Method, a.r.Method != "", false) &&
		(len(o.paths) == 0 || o.paths.match(a.path)) &&
		(len(o.notPaths) == 0 || !o.notPaths.match(a.path)) &&
		(len(o.ports) == 0 || containsPort(o.ports, a.r.Port)) &&
		(len(o.notPorts) == 0 || !containsPort(o.notPorts, a.r.Port))
}

// matchHost compares case-insensitively, with and without the request's
// port: "example.com" matches "example.com:8080", "example.com:8080" only
// that port.
func (a *attrs) matchHost(f *field) bool {
	if !f.set() {
		return true
	}
	present := a.host != ""
	hostMatch := func(l strList) bool {
		return l.match(a.host, present, true) || (a.hostNoPort != a.host && l.match(a.hostNoPort, present, true))
	}
	if len(f.in) > 0 && !hostMatch(f.in) {
		return false
	}
	return len(f.notIn) == 0 || !hostMatch(f.notIn)
}

func (a *attrs) matchCondition(c *condition) bool {
	switch c.key {
	case condHeader:
		vals := a.r.Headers[c.header]
		if c.header == "Host" && a.host != "" {
			vals = a.hostVals[:]
		}
		if len(c.values.in) > 0 && (len(vals) == 0 || !matchHeaderValues(c.values.in, vals)) {
			return false
		}
		return len(c.values.notIn) == 0 || len(vals) == 0 || !matchHeaderValues(c.values.notIn, vals)
	case condSourceNamespace:
		return c.values.match(a.namespace, a.hasNamespace, false)
	case condSourcePrincipal:
		return c.values.match(a.principal, a.hasPrincipal, false)
	case condSourceIP:
		return (len(c.ips) == 0 || containsIP(c.ips, a.ip)) && (len(c.notIPs) == 0 || !containsIP(c.notIPs, a.ip))
	case condDestinationIP:
		ip := a.r.DestinationIP.Unmap()
		return (len(c.ips) == 0 || containsIP(c.ips, ip)) && (len(c.notIPs) == 0 || !containsIP(c.notIPs, ip))
	case condDestinationPort:
		return (len(c.ports) == 0 || containsPort(c.ports, a.r.Port)) && (len(c.notPorts) == 0 || !containsPort(c.notPorts, a.r.Port))
	}
	return false
}

// matchHeaderValues reports whether any value of a repeated header
// matches.
func matchHeaderValues(l strList, vals []string) bool {
	return l.matchAny(vals)
}

func containsIP(ps []netip.Prefix, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func containsPort(ps []uint16, port uint16) bool {
	for _, p := range ps {
		if p == port {
			return true
		}
	}
	return false
}
