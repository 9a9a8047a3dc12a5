package inbound

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/flow"
	"github.com/weftmesh/weft/waypoint/l7config"
)

// Errors of Resolve, which the listener answers with 400, 503 and 401.
var (
	ErrBadAuthority       = errors.New("authority is not ip:port")
	ErrUnknownDestination = errors.New("destination unknown to the mesh")
	ErrNotBound           = errors.New("destination does not use this waypoint")
)

// Mesh is what the Resolver reads of the mesh; wds.Store implements it.
type Mesh interface {
	ServiceByVIP(a wds.NetAddr) *wds.Service
	WorkloadByIP(a wds.NetAddr) *wds.Workload
	ServiceByKey(key string) *wds.Service
}

var _ Mesh = (*wds.Store)(nil)

// Resolver turns CONNECT authorities into destinations bound to this
// waypoint. It is safe for concurrent use.
type Resolver struct {
	// Mesh is the discovery state. Required.
	Mesh Mesh
	// Network is the waypoint's network.
	Network string
	// Key is this waypoint's Service as "<namespace>/<hostname>", the
	// form of a hostname waypoint reference.
	Key string
	// Addrs are the waypoint's own pod addresses (address references).
	Addrs []netip.Addr
	// Config gives the declared port protocols; nil means none.
	Config func() *l7config.Snapshot
	// AnyDestination accepts destinations that are not bound to this
	// waypoint (tests and debugging only).
	AnyDestination bool
}

// Resolve parses authority ("ip:port") and finds the Service with that VIP,
// else the workload with that IP, which must name this waypoint as theirs.
func (r *Resolver) Resolve(authority string) (flow.Destination, error) {
	ap, err := ParseAuthority(authority)
	if err != nil {
		return flow.Destination{}, err
	}
	d := flow.Destination{Authority: ap, Port: ap.Port()}
	na := wds.NetAddr{Network: r.Network, IP: ap.Addr()}
	if svc := r.Mesh.ServiceByVIP(na); svc != nil {
		d.Service = svc
		if !r.AnyDestination && !r.isUs(svc.Waypoint) {
			return d, fmt.Errorf("%w: service %s", ErrNotBound, svc.Key)
		}
		d.Protocol = r.protocol(svc, ap.Port())
		return d, nil
	}
	if w := r.Mesh.WorkloadByIP(na); w != nil {
		d.Workload = w
		if !r.AnyDestination && !r.isUs(w.Waypoint) {
			return d, fmt.Errorf("%w: workload %s", ErrNotBound, w.UID)
		}
		return d, nil
	}
	return d, fmt.Errorf("%w: %s", ErrUnknownDestination, ap)
}

// Workload returns the workload at ip, or nil.
func (r *Resolver) Workload(ip netip.Addr) *wds.Workload {
	if !ip.IsValid() {
		return nil
	}
	return r.Mesh.WorkloadByIP(wds.NetAddr{Network: r.Network, IP: ip})
}

// isUs reports whether gateway reference gw names this waypoint.
func (r *Resolver) isUs(gw *wds.Gateway) bool {
	if gw == nil {
		return false
	}
	if gw.Service != "" {
		return strings.EqualFold(gw.Service, r.Key)
	}
	for _, a := range r.Addrs {
		if gw.Addr.IP == a {
			return true
		}
	}
	if own := r.Mesh.ServiceByKey(r.Key); own != nil {
		for _, v := range own.VIPs {
			if v.IP == gw.Addr.IP {
				return true
			}
		}
	}
	return false
}

// protocol is the declared protocol of a Service port: the waypoint's
// RouteConfig first, else the port's app_protocol from discovery.
func (r *Resolver) protocol(svc *wds.Service, port uint16) l7api.Protocol {
	if r.Config != nil {
		if p := r.Config().Protocol(svc.Hostname(), port); p != l7api.Protocol_PROTOCOL_UNSPECIFIED {
			return p
		}
	}
	for _, p := range svc.Proto.GetPorts() {
		if p.GetServicePort() != uint32(port) {
			continue
		}
		switch p.GetAppProtocol() {
		case workloadapi.AppProtocol_HTTP11:
			return l7api.Protocol_HTTP
		case workloadapi.AppProtocol_HTTP2:
			return l7api.Protocol_HTTP2
		case workloadapi.AppProtocol_GRPC:
			return l7api.Protocol_GRPC
		}
	}
	return l7api.Protocol_PROTOCOL_UNSPECIFIED
}

// ParseAuthority parses a CONNECT authority "ip:port" (IPv6 in brackets).
// Host names, zones, port 0 and anything else are ErrBadAuthority.
func ParseAuthority(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" || !ap.Addr().IsValid() {
		return netip.AddrPort{}, fmt.Errorf("%w: %q", ErrBadAuthority, s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// ForwardedFor returns the address and port of the first for= element of
// a Forwarded header (RFC 7239), as ztunnel sends it: for="10.0.0.1:4321"
// or for="[fd00::1]:80". A bare address gets port 0.
func ForwardedFor(h string) (netip.AddrPort, bool) {
	for _, elem := range strings.Split(h, ",") {
		for _, pair := range strings.Split(elem, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || !strings.EqualFold(k, "for") {
				continue
			}
			v = strings.Trim(v, `"`)
			if ap, err := netip.ParseAddrPort(v); err == nil && ap.Addr().Zone() == "" {
				return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
			}
			if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil && a.Zone() == "" {
				return netip.AddrPortFrom(a.Unmap(), 0), true
			}
			return netip.AddrPort{}, false
		}
	}
	return netip.AddrPort{}, false
}

func declared(p l7api.Protocol) bool { return p != l7api.Protocol_PROTOCOL_UNSPECIFIED }

func isHTTP(p l7api.Protocol) bool {
	return p == l7api.Protocol_HTTP || p == l7api.Protocol_HTTP2 || p == l7api.Protocol_GRPC
}
