package explain

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/l4authz"
)

// The paths a connection can take.
const (
	PathDirect      = "direct HBONE"
	PathWaypoint    = "via waypoint"
	PathPassthrough = "passthrough"
	PathUnenrolled  = "plaintext into the mesh"
)

// Peer is one end of the connection as the dump knows it.
type Peer struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Address   string `json:"address"`
	Node      string `json:"node,omitempty"`
	Identity  string `json:"identity,omitempty"`
	// InMesh is true when ztunnel captures the workload (HBONE).
	InMesh bool `json:"inMesh"`
}

// Endpoint is the verdict for one destination workload.
type Endpoint struct {
	Workload Peer   `json:"workload"`
	Port     uint16 `json:"port"`
	Path     string `json:"path"`
	// Via explains the path: the tunnel endpoint or the waypoint.
	Via string `json:"via"`
	// Allowed is ztunnel's L4 verdict at the destination.
	Allowed bool   `json:"allowed"`
	Policy  string `json:"policy,omitempty"`
	Reason  string `json:"reason"`
	// Evaluated is what the verdict was computed for: the source identity,
	// or the waypoint's when traffic goes via one.
	Evaluated string   `json:"evaluatedFor"`
	DryRun    []string `json:"dryRun,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// Result is the whole explanation.
type Result struct {
	From      Peer       `json:"from"`
	To        string     `json:"to"`
	Service   string     `json:"service,omitempty"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Explain resolves from (a workload "ns/name" or "name.ns", or an IP) and
// to (a workload, a service "name.ns" / hostname, or an IP, with optional
// ":port") in d and evaluates ztunnel's policies for each endpoint.
func Explain(d *zdump.Dump, from, to string) (*Result, error) {
	td := "cluster.local"
	if v, ok := d.Config["trustDomain"].(string); ok && v != "" {
		td = v
	}
	src, err := findWorkload(d, from)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	target, port, err := splitPort(to)
	if err != nil {
		return nil, err
	}
	engine, err := compile(d)
	if err != nil {
		return nil, err
	}
	res := &Result{From: peer(src, td), To: to, Endpoints: []Endpoint{}}
	var dsts []*workloadapi.Workload
	var svc *workloadapi.Service
	if w, werr := findWorkload(d, target); werr == nil {
		dsts = []*workloadapi.Workload{w}
	} else if svc = findService(d, target); svc != nil {
		res.Service = svc.GetNamespace() + "/" + svc.GetHostname()
		dsts = endpointsOf(d, svc)
		if len(dsts) == 0 {
			return res, fmt.Errorf("service %s has no endpoints: the connection would fail (no healthy upstream)", res.Service)
		}
	} else {
		return nil, fmt.Errorf("destination %q is neither a workload nor a service this ztunnel knows (try an IP, ns/pod, or service.ns)", target)
	}
	for _, w := range dsts {
		res.Endpoints = append(res.Endpoints, endpoint(d, engine, td, src, w, svc, port))
	}
	return res, nil
}

// splitPort splits an optional ":port" off a destination; port 0 means
// none was given, so an explicit ":0" is an error.
func splitPort(s string) (string, uint16, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", 0, fmt.Errorf("destination port %q: must be a number 1-65535", "0")
		}
		return ap.Addr().String(), ap.Port(), nil
	}
	host, p, ok := strings.Cut(s, ":")
	if !ok || strings.Count(s, ":") > 1 {
		return s, 0, nil
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("destination port %q: must be a number 1-65535", p)
	}
	return host, uint16(n), nil
}

func compile(d *zdump.Dump) (*l4authz.Engine, error) {
	var ps []*l4authz.Policy
	for _, it := range d.Policies {
		p, err := l4authz.Compile(it.Msg)
		if err != nil {
			return nil, fmt.Errorf("policy %s/%s: %w", it.Msg.GetNamespace(), it.Msg.GetName(), err)
		}
		ps = append(ps, p)
	}
	return l4authz.NewEngine(ps...), nil
}

func addrs(w *workloadapi.Workload) []netip.Addr {
	var out []netip.Addr
	for _, b := range w.GetAddresses() {
		if a, ok := netip.AddrFromSlice(b); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// findWorkload matches an IP, "ns/name" or "name.ns".
func findWorkload(d *zdump.Dump, s string) (*workloadapi.Workload, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if w := d.WorkloadByAddr(a); w != nil {
			return w, nil
		}
		return nil, fmt.Errorf("no workload with address %s", s)
	}
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		name, ns, ok = strings.Cut(s, ".")
	}
	if !ok {
		return nil, fmt.Errorf("%q: name it as NAMESPACE/POD, POD.NAMESPACE or an IP", s)
	}
	for _, it := range d.Workloads {
		if it.Msg.GetNamespace() == ns && it.Msg.GetName() == name {
			return it.Msg, nil
		}
	}
	return nil, fmt.Errorf("no workload %s/%s in the ztunnel's view (is the pod running?)", ns, name)
}

// findService matches a VIP, a hostname, "name.ns" or "ns/name".
func findService(d *zdump.Dump, s string) *workloadapi.Service {
	ip, ipErr := netip.ParseAddr(s)
	for _, it := range d.Services {
		sv := it.Msg
		if ipErr == nil {
			for _, a := range sv.GetAddresses() {
				if v, ok := netip.AddrFromSlice(a.GetAddress()); ok && v.Unmap() == ip {
					return sv
				}
			}
			continue
		}
		short := sv.GetName() + "." + sv.GetNamespace()
		if s == sv.GetHostname() || s == short || s == sv.GetNamespace()+"/"+sv.GetName() || strings.HasPrefix(sv.GetHostname(), short+".svc") && s == short+".svc" {
			return sv
		}
	}
	return nil
}

func endpointsOf(d *zdump.Dump, svc *workloadapi.Service) []*workloadapi.Workload {
	key := svc.GetNamespace() + "/" + svc.GetHostname()
	var out []*workloadapi.Workload
	for _, it := range d.Workloads {
		if _, ok := it.Msg.GetServices()[key]; ok && it.Msg.GetStatus() == workloadapi.WorkloadStatus_HEALTHY {
			out = append(out, it.Msg)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}

func identityOf(w *workloadapi.Workload, td string) identity.ID {
	if w.GetTrustDomain() != "" {
		td = w.GetTrustDomain()
	}
	sa := w.GetServiceAccount()
	if sa == "" {
		sa = "default"
	}
	return identity.ID{TrustDomain: td, Namespace: w.GetNamespace(), ServiceAccount: sa}
}

func peer(w *workloadapi.Workload, td string) Peer {
	p := Peer{Namespace: w.GetNamespace(), Name: w.GetName(), Node: w.GetNode(), Identity: identityOf(w, td).String(),
		InMesh: w.GetTunnelProtocol() == workloadapi.TunnelProtocol_HBONE}
	if as := addrs(w); len(as) > 0 {
		p.Address = as[0].String()
	}
	return p
}

func gatewayName(g *workloadapi.GatewayAddress) string {
	if h := g.GetHostname(); h != nil {
		return h.GetNamespace() + "/" + h.GetHostname()
	}
	if a, ok := netip.AddrFromSlice(g.GetAddress().GetAddress()); ok {
		return a.Unmap().String()
	}
	return "?"
}

func endpoint(d *zdump.Dump, e *l4authz.Engine, td string, src, dst *workloadapi.Workload, svc *workloadapi.Service, port uint16) Endpoint {
	ep := Endpoint{Workload: peer(dst, td), Port: port}
	if svc != nil && port != 0 {
		ep.Port = targetPort(svc, dst, port)
		if ep.Port == 0 {
			ep.Notes = append(ep.Notes, fmt.Sprintf("service %s does not expose port %d", svc.GetHostname(), port))
			ep.Port = port
		}
	}
	srcIn, dstIn := src.GetTunnelProtocol() == workloadapi.TunnelProtocol_HBONE, dst.GetTunnelProtocol() == workloadapi.TunnelProtocol_HBONE
	wp := dst.GetWaypoint()
	if svc != nil && svc.GetWaypoint() != nil {
		wp = svc.GetWaypoint()
	}
	conn := l4authz.Conn{DstPort: ep.Port}
	if as := addrs(src); len(as) > 0 {
		conn.SrcIP = as[0]
	}
	if as := addrs(dst); len(as) > 0 {
		conn.DstIP = as[0]
	}
	switch {
	case !dstIn:
		ep.Path, ep.Via = PathPassthrough, "destination is not in the mesh: plain TCP to "+ep.Workload.Address
		ep.Allowed, ep.Reason, ep.Evaluated = true, "no ztunnel enforces policy at a destination outside the mesh", "-"
		return ep
	case !srcIn:
		ep.Path, ep.Via = PathUnenrolled, "source is not in the mesh: its ztunnel does not capture it; the destination's ztunnel takes the plaintext on 15006"
		ep.Evaluated = "no identity (plaintext)"
	case wp != nil:
		ep.Path, ep.Via = PathWaypoint, fmt.Sprintf("HBONE to waypoint %s, which connects on to %s:%d", gatewayName(wp), ep.Workload.Address, ep.Port)
		ep.Notes = append(ep.Notes, "L7 policies attached to the waypoint (targetRefs) are applied there and not evaluated here")
		conn.Identity = identity.ID{TrustDomain: td, Namespace: wpNamespace(wp, dst), ServiceAccount: wpName(wp)}
		ep.Evaluated = conn.Identity.String() + " (the waypoint: the destination ztunnel sees it as the peer)"
	default:
		ep.Path, ep.Via = PathDirect, fmt.Sprintf("mTLS tunnel from ztunnel on %s to %s:15008, expecting %s", src.GetNode(), ep.Workload.Address, ep.Workload.Identity)
		id := identityOf(src, td)
		conn.Identity, ep.Evaluated = id, id.String()
	}
	dec := e.Evaluate(l4authz.Target{Namespace: dst.GetNamespace(), Policies: dst.GetAuthorizationPolicies()}, conn)
	ep.Allowed, ep.Policy, ep.Reason, ep.DryRun = dec.Allowed, dec.Policy, dec.Reason, dec.DryRun
	if dec.Reason == l4authz.ReasonNoAllowMatch {
		var allows []string
		for _, p := range e.Applicable(l4authz.Target{Namespace: dst.GetNamespace(), Policies: dst.GetAuthorizationPolicies()}) {
			if p.Action == securityapi.Action_ALLOW && !p.DryRun {
				allows = append(allows, p.Key)
			}
		}
		ep.Notes = append(ep.Notes, "ALLOW policies that apply and did not match: "+strings.Join(allows, ", "))
	}
	return ep
}

// wpName guesses the waypoint's service account: Istio names it after the
// waypoint Gateway, whose service is "<name>.<ns>.svc...".
func wpName(g *workloadapi.GatewayAddress) string {
	if h := g.GetHostname(); h != nil {
		name, _, _ := strings.Cut(h.GetHostname(), ".")
		return name
	}
	return "waypoint"
}

func wpNamespace(g *workloadapi.GatewayAddress, dst *workloadapi.Workload) string {
	if h := g.GetHostname(); h != nil && h.GetNamespace() != "" {
		return h.GetNamespace()
	}
	return dst.GetNamespace()
}

func targetPort(svc *workloadapi.Service, dst *workloadapi.Workload, port uint16) uint16 {
	key := svc.GetNamespace() + "/" + svc.GetHostname()
	if pl, ok := dst.GetServices()[key]; ok {
		for _, p := range pl.GetPorts() {
			if p.GetServicePort() == uint32(port) && p.GetTargetPort() != 0 {
				return uint16(p.GetTargetPort())
			}
		}
	}
	for _, p := range svc.GetPorts() {
		if p.GetServicePort() == uint32(port) {
			if p.GetTargetPort() == 0 {
				return port
			}
			return uint16(p.GetTargetPort())
		}
	}
	return 0
}
