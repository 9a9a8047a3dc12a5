package wds

import (
	"fmt"
	"net/netip"

	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
)

// NetAddr is an IP on a network; the empty network is the default one.
type NetAddr struct {
	Network string
	IP      netip.Addr
}

// String formats the address as the xDS alias "<network>/<ip>".
func (a NetAddr) String() string { return a.Network + "/" + a.IP.String() }

// Workload is one validated workload. Its fields are read-only.
type Workload struct {
	// Proto is the resource as received; do not modify it.
	Proto *workloadapi.Workload
	// UID is the workload's key, "<cluster>//Pod/<namespace>/<name>".
	UID string
	// Addrs are the workload's IPs, unmapped.
	Addrs []netip.Addr
	// Identity is the workload's SPIFFE identity, with the mesh trust domain
	// and service account "default" filled in when the resource omits them.
	Identity identity.ID
	// Waypoint is the workload's waypoint, if any.
	Waypoint *Gateway
	// QUIC reports that the workload's ztunnel (or the waypoint itself)
	// serves HBONE over QUIC on UDP 15008: the resource carries the
	// ExtensionHBONEQUIC extension.
	QUIC bool
}

// Name, Namespace, Node and HBONE are shorthands for the proto's fields.
func (w *Workload) Name() string      { return w.Proto.GetName() }
func (w *Workload) Namespace() string { return w.Proto.GetNamespace() }
func (w *Workload) Node() string      { return w.Proto.GetNode() }
func (w *Workload) HBONE() bool {
	return w.Proto.GetTunnelProtocol() == workloadapi.TunnelProtocol_HBONE
}

// Healthy reports whether the workload is ready to receive traffic.
func (w *Workload) Healthy() bool { return w.Proto.GetStatus() == workloadapi.WorkloadStatus_HEALTHY }

// Service is one validated service. Its fields are read-only.
type Service struct {
	// Proto is the resource as received; do not modify it.
	Proto *workloadapi.Service
	// Key is "<namespace>/<hostname>", the service's xDS name.
	Key string
	// VIPs are the service's addresses.
	VIPs []NetAddr
	// Waypoint is the service's waypoint, if any.
	Waypoint *Gateway
}

// Hostname and Namespace are shorthands for the proto's fields.
func (s *Service) Hostname() string  { return s.Proto.GetHostname() }
func (s *Service) Namespace() string { return s.Proto.GetNamespace() }

// TargetPort returns the default target port of service port p and whether
// the service exposes p. A zero target port in the resource means the
// service port itself.
func (s *Service) TargetPort(p uint16) (uint16, bool) {
	for _, sp := range s.Proto.GetPorts() {
		if sp.GetServicePort() == uint32(p) {
			if sp.GetTargetPort() == 0 {
				return p, true
			}
			return uint16(sp.GetTargetPort()), true
		}
	}
	return 0, false
}

// Gateway is a validated waypoint or network gateway reference: either an
// address or a service hostname, and the HBONE port.
type Gateway struct {
	// Addr is set for an address reference.
	Addr NetAddr
	// Service is "<namespace>/<hostname>" for a hostname reference.
	Service string
	// Port is the gateway's HBONE port (15008 when unset).
	Port uint16
}

// DefaultHBONEPort is the HBONE port of a gateway that does not name one.
const DefaultHBONEPort = 15008

func newWorkload(p *workloadapi.Workload, trustDomain string) (*Workload, error) {
	uid := p.GetUid()
	if uid == "" {
		return nil, fmt.Errorf("uid: must not be empty")
	}
	if p.GetName() == "" {
		return nil, fmt.Errorf("name: must not be empty")
	}
	if p.GetNamespace() == "" {
		return nil, fmt.Errorf("namespace: must not be empty")
	}
	if _, ok := workloadapi.TunnelProtocol_name[int32(p.GetTunnelProtocol())]; !ok {
		return nil, fmt.Errorf("tunnel_protocol: unknown value %d", p.GetTunnelProtocol())
	}
	w := &Workload{Proto: p, UID: uid, QUIC: HasExtension(p.GetExtensions(), ExtensionHBONEQUIC)}
	for i, b := range p.GetAddresses() {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return nil, fmt.Errorf("addresses[%d]: %d bytes, want 4 or 16", i, len(b))
		}
		w.Addrs = append(w.Addrs, a.Unmap())
	}
	if len(w.Addrs) == 0 && p.GetHostname() == "" {
		return nil, fmt.Errorf("addresses: a workload needs an address or a hostname")
	}
	td, sa := p.GetTrustDomain(), p.GetServiceAccount()
	if td == "" {
		td = trustDomain
	}
	if sa == "" {
		sa = "default"
	}
	id, err := identity.NewID(td, p.GetNamespace(), sa)
	if err != nil {
		return nil, fmt.Errorf("trust_domain/service_account: %w", err)
	}
	w.Identity = id
	if p.GetWaypoint() != nil {
		if w.Waypoint, err = newGateway(p.GetWaypoint()); err != nil {
			return nil, fmt.Errorf("waypoint.%w", err)
		}
	}
	for key, pl := range p.GetServices() {
		for i, port := range pl.GetPorts() {
			if err := checkPort(port); err != nil {
				return nil, fmt.Errorf("services[%q].ports[%d].%w", key, i, err)
			}
		}
	}
	return w, nil
}

func newService(p *workloadapi.Service) (*Service, error) {
	if p.GetHostname() == "" {
		return nil, fmt.Errorf("hostname: must not be empty")
	}
	if p.GetNamespace() == "" {
		return nil, fmt.Errorf("namespace: must not be empty")
	}
	s := &Service{Proto: p, Key: p.GetNamespace() + "/" + p.GetHostname()}
	for i, a := range p.GetAddresses() {
		ip, ok := netip.AddrFromSlice(a.GetAddress())
		if !ok {
			return nil, fmt.Errorf("addresses[%d].address: %d bytes, want 4 or 16", i, len(a.GetAddress()))
		}
		s.VIPs = append(s.VIPs, NetAddr{Network: a.GetNetwork(), IP: ip.Unmap()})
	}
	for i, port := range p.GetPorts() {
		if err := checkPort(port); err != nil {
			return nil, fmt.Errorf("ports[%d].%w", i, err)
		}
		if port.GetServicePort() == 0 {
			return nil, fmt.Errorf("ports[%d].service_port: must not be 0", i)
		}
	}
	if p.GetWaypoint() != nil {
		gw, err := newGateway(p.GetWaypoint())
		if err != nil {
			return nil, fmt.Errorf("waypoint.%w", err)
		}
		s.Waypoint = gw
	}
	return s, nil
}

func checkPort(p *workloadapi.Port) error {
	if p.GetServicePort() > 65535 {
		return fmt.Errorf("service_port: %d out of range", p.GetServicePort())
	}
	if p.GetTargetPort() > 65535 {
		return fmt.Errorf("target_port: %d out of range", p.GetTargetPort())
	}
	return nil
}

func newGateway(g *workloadapi.GatewayAddress) (*Gateway, error) {
	out := &Gateway{Port: DefaultHBONEPort}
	if p := g.GetHboneMtlsPort(); p != 0 {
		if p > 65535 {
			return nil, fmt.Errorf("hbone_mtls_port: %d out of range", p)
		}
		out.Port = uint16(p)
	}
	switch d := g.GetDestination().(type) {
	case *workloadapi.GatewayAddress_Address:
		ip, ok := netip.AddrFromSlice(d.Address.GetAddress())
		if !ok {
			return nil, fmt.Errorf("address.address: %d bytes, want 4 or 16", len(d.Address.GetAddress()))
		}
		out.Addr = NetAddr{Network: d.Address.GetNetwork(), IP: ip.Unmap()}
	case *workloadapi.GatewayAddress_Hostname:
		if d.Hostname.GetHostname() == "" || d.Hostname.GetNamespace() == "" {
			return nil, fmt.Errorf("hostname: namespace and hostname must both be set")
		}
		out.Service = d.Hostname.GetNamespace() + "/" + d.Hostname.GetHostname()
	default:
		return nil, fmt.Errorf("destination: neither address nor hostname set")
	}
	return out, nil
}
