package authz

import (
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// policy is one compiled L7Policy.
type policy struct {
	id       string // "namespace/name"
	action   l7api.Action
	dryRun   bool
	gateways []string // "namespace/name"
	services []string // "namespace/name"
	rules    []rule
}

func (p *policy) targetsGateway(gw string) bool {
	for _, g := range p.gateways {
		if g == gw {
			return true
		}
	}
	return false
}

type rule struct {
	from []source
	to   []operation
	when []condition
	// l4 is the rule without its HTTP parts (hosts, methods, paths and
	// request.headers conditions) when it has any, for TCP traffic.
	l4 *rule
}

type source struct {
	principals, namespaces field
	ipBlocks, notIPBlocks  []netip.Prefix
}

type operation struct {
	hosts, methods  field
	paths, notPaths pathList
	ports, notPorts []uint16
}

// condKey is a supported `when` key.
type condKey uint8

const (
	condHeader condKey = iota
	condSourceIP
	condSourceNamespace
	condSourcePrincipal
	condDestinationPort
	condDestinationIP
)

type condition struct {
	key         condKey
	header      string // canonical, for condHeader
	values      field  // header, namespace, principal
	ips, notIPs []netip.Prefix
	ports       []uint16
	notPorts    []uint16
}

// Compile validates and compiles ps. Errors name the policy
// ("namespace/name") and the offending field, e.g. a bad CIDR, a bad path
// template, or an unsupported `when` key. Duplicate names are an error.
// A nil or empty ps gives an Engine that allows everything.
func Compile(ps []*l7api.L7Policy) (*Engine, error) {
	e := &Engine{byGateway: targets{}, byService: targets{}}
	seen := make(map[string]bool, len(ps))
	compiled := make([]*policy, 0, len(ps))
	for i, p := range ps {
		if p == nil {
			return nil, fmt.Errorf("l7policy [%d]: nil", i)
		}
		id := p.GetNamespace() + "/" + p.GetName()
		if p.GetNamespace() == "" || p.GetName() == "" {
			return nil, fmt.Errorf("l7policy [%d] %q: name and namespace must be set", i, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("l7policy %q: duplicate", id)
		}
		seen[id] = true
		cp, err := compilePolicy(id, p)
		if err != nil {
			return nil, fmt.Errorf("l7policy %q: %w", id, err)
		}
		compiled = append(compiled, cp)
	}
	sort.Slice(compiled, func(i, j int) bool { return compiled[i].id < compiled[j].id })
	for _, cp := range compiled {
		for _, key := range cp.gateways {
			e.byGateway.add(key, cp)
		}
		for _, key := range cp.services {
			e.byService.add(key, cp)
		}
	}
	return e, nil
}

func compilePolicy(id string, p *l7api.L7Policy) (*policy, error) {
	cp := &policy{id: id, action: p.GetAction(), dryRun: p.GetDryRun()}
	switch cp.action {
	case l7api.Action_ALLOW, l7api.Action_DENY, l7api.Action_AUDIT:
	default:
		return nil, fmt.Errorf("action: unknown %d", cp.action)
	}
	for i, t := range p.GetTargets() {
		if t.GetName() == "" {
			return nil, fmt.Errorf("targets[%d].name: empty", i)
		}
		ns := t.GetNamespace()
		if ns == "" {
			ns = p.GetNamespace()
		}
		switch t.GetKind() {
		case l7api.PolicyTarget_GATEWAY:
			cp.gateways = appendUnique(cp.gateways, ns+"/"+t.GetName())
		case l7api.PolicyTarget_SERVICE:
			cp.services = appendUnique(cp.services, ns+"/"+t.GetName())
		default:
			return nil, fmt.Errorf("targets[%d].kind: unknown %d", i, t.GetKind())
		}
	}
	for i, r := range p.GetRules() {
		cr, err := compileRule(r)
		if err != nil {
			return nil, fmt.Errorf("rules[%d].%w", i, err)
		}
		cp.rules = append(cp.rules, cr)
	}
	return cp, nil
}

func appendUnique(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

func compileRule(r *l7api.L7Rule) (rule, error) {
	var cr rule
	for i, s := range r.GetFrom() {
		src := source{
			principals: field{in: compileStrs(s.GetPrincipals(), stripSPIFFE), notIn: compileStrs(s.GetNotPrincipals(), stripSPIFFE)},
			namespaces: field{in: compileStrs(s.GetNamespaces(), nil), notIn: compileStrs(s.GetNotNamespaces(), nil)},
		}
		var err error
		if src.ipBlocks, err = parsePrefixes(s.GetIpBlocks()); err != nil {
			return rule{}, fmt.Errorf("from[%d].ip_blocks%w", i, err)
		}
		if src.notIPBlocks, err = parsePrefixes(s.GetNotIpBlocks()); err != nil {
			return rule{}, fmt.Errorf("from[%d].not_ip_blocks%w", i, err)
		}
		cr.from = append(cr.from, src)
	}
	for i, o := range r.GetTo() {
		op := operation{
			hosts:   field{in: compileStrs(o.GetHosts(), nil), notIn: compileStrs(o.GetNotHosts(), nil)},
			methods: field{in: compileStrs(o.GetMethods(), nil), notIn: compileStrs(o.GetNotMethods(), nil)},
		}
		var err error
		if op.paths, err = compilePaths(o.GetPaths()); err != nil {
			return rule{}, fmt.Errorf("to[%d].paths%w", i, err)
		}
		if op.notPaths, err = compilePaths(o.GetNotPaths()); err != nil {
			return rule{}, fmt.Errorf("to[%d].not_paths%w", i, err)
		}
		if op.ports, err = checkPorts(o.GetPorts()); err != nil {
			return rule{}, fmt.Errorf("to[%d].ports%w", i, err)
		}
		if op.notPorts, err = checkPorts(o.GetNotPorts()); err != nil {
			return rule{}, fmt.Errorf("to[%d].not_ports%w", i, err)
		}
		cr.to = append(cr.to, op)
	}
	for i, c := range r.GetWhen() {
		cc, err := compileCondition(c)
		if err != nil {
			return rule{}, fmt.Errorf("when[%d]: %w", i, err)
		}
		cr.when = append(cr.when, cc)
	}
	cr.l4 = l4Rule(&cr)
	return cr, nil
}

// l4Rule returns r without its HTTP parts, or nil when it has none.
func l4Rule(r *rule) *rule {
	hasHTTP := false
	for i := range r.to {
		o := &r.to[i]
		if o.hosts.set() || o.methods.set() || len(o.paths) > 0 || len(o.notPaths) > 0 {
			hasHTTP = true
		}
	}
	for i := range r.when {
		if r.when[i].key == condHeader {
			hasHTTP = true
		}
	}
	if !hasHTTP {
		return nil
	}
	l4 := &rule{from: r.from}
	for _, o := range r.to {
		l4.to = append(l4.to, operation{ports: o.ports, notPorts: o.notPorts})
	}
	for _, c := range r.when {
		if c.key != condHeader {
			l4.when = append(l4.when, c)
		}
	}
	return l4
}

// parsePrefixes parses CIDRs or single addresses; its errors start with
// the index ("[2]: ...") so callers can prefix the field name.
func parsePrefixes(vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, v := range vals {
		p, err := parsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %q is not a CIDR or address", i, v)
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePrefix(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			if p.Bits() < 0 {
				return netip.Prefix{}, fmt.Errorf("bad 4in6 prefix")
			}
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func compilePaths(vals []string) (pathList, error) {
	var out pathList
	for i, v := range vals {
		m, err := compilePathMatch(v)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func checkPorts(vals []uint32) ([]uint16, error) {
	var out []uint16
	for i, v := range vals {
		if v == 0 || v > 65535 {
			return nil, fmt.Errorf("[%d]: port %d out of range", i, v)
		}
		out = append(out, uint16(v))
	}
	return out, nil
}

func compileCondition(c *l7api.Condition) (condition, error) {
	key := c.GetKey()
	if len(c.GetValues()) == 0 && len(c.GetNotValues()) == 0 {
		return condition{}, fmt.Errorf("key %q: values or not_values must be set", key)
	}
	cc := condition{}
	switch {
	case strings.HasPrefix(key, "request.headers[") && strings.HasSuffix(key, "]"):
		name := key[len("request.headers[") : len(key)-1]
		if name == "" || !httpguts.ValidHeaderFieldName(name) {
			return condition{}, fmt.Errorf("key %q: invalid header name", key)
		}
		cc.key, cc.header = condHeader, http.CanonicalHeaderKey(name)
		cc.values = field{in: compileStrs(c.GetValues(), nil), notIn: compileStrs(c.GetNotValues(), nil)}
	case key == "source.namespace":
		cc.key = condSourceNamespace
		cc.values = field{in: compileStrs(c.GetValues(), nil), notIn: compileStrs(c.GetNotValues(), nil)}
	case key == "source.principal":
		cc.key = condSourcePrincipal
		cc.values = field{in: compileStrs(c.GetValues(), stripSPIFFE), notIn: compileStrs(c.GetNotValues(), stripSPIFFE)}
	case key == "source.ip" || key == "destination.ip":
		cc.key = condSourceIP
		if key == "destination.ip" {
			cc.key = condDestinationIP
		}
		var err error
		if cc.ips, err = parsePrefixes(c.GetValues()); err != nil {
			return condition{}, fmt.Errorf("key %q: values%w", key, err)
		}
		if cc.notIPs, err = parsePrefixes(c.GetNotValues()); err != nil {
			return condition{}, fmt.Errorf("key %q: not_values%w", key, err)
		}
	case key == "destination.port":
		cc.key = condDestinationPort
		var err error
		if cc.ports, err = parsePorts(c.GetValues()); err != nil {
			return condition{}, fmt.Errorf("key %q: values%w", key, err)
		}
		if cc.notPorts, err = parsePorts(c.GetNotValues()); err != nil {
			return condition{}, fmt.Errorf("key %q: not_values%w", key, err)
		}
	default:
		return condition{}, fmt.Errorf("key %q: unsupported (want request.headers[<name>], source.ip, source.namespace, source.principal, destination.ip or destination.port)", key)
	}
	return cc, nil
}

func parsePorts(vals []string) ([]uint16, error) {
	var out []uint16
	for i, v := range vals {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("[%d]: %q is not a port", i, v)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}
