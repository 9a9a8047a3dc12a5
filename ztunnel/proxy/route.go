package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
)

// route is where an outbound connection goes.
type route struct {
	// hbone: tunnel to addr with authority; else plain TCP to addr.
	hbone     bool
	addr      netip.AddrPort
	authority string
	expected  []identity.ID
	// svc and dst describe the destination for telemetry (either may be nil).
	svc *wds.Service
	dst *wds.Workload
	// waypoint is true when the tunnel goes to a waypoint.
	waypoint bool
}

// Errors that refuse a connection, with their Envoy-style response flags.
var (
	errNoHealthy = errors.New("no healthy upstream")
	errNoRoute   = errors.New("no route to waypoint")
)

// resolve decides the route for a connection from src (may be nil) to dst.
func (p *Proxy) resolve(ctx context.Context, src *wds.Workload, dst netip.AddrPort) (route, error) {
	na := wds.NetAddr{Network: p.cfg.Network, IP: dst.Addr().Unmap()}
	var w *wds.Workload
	var svc *wds.Service
	if p.cfg.OnDemandTimeout > 0 {
		lctx, cancel := context.WithTimeout(ctx, p.cfg.OnDemandTimeout)
		w, svc = p.cfg.Store.LookupOnDemand(lctx, na)
		cancel()
	} else {
		w, svc = p.cfg.Store.Lookup(na)
	}
	if svc != nil && svc.Proto.GetLoadBalancing().GetMode() == wl.LoadBalancing_PASSTHROUGH {
		// No endpoint selection: the original destination is the target.
		w, svc = p.cfg.Store.WorkloadByIP(na), nil
	}
	switch {
	case svc != nil:
		if svc.Waypoint != nil && !p.isWaypointFor(src, svc.Waypoint) {
			return p.viaWaypoint(src, svc.Waypoint, dst, svc, nil)
		}
		ep, err := p.cfg.Store.PickEndpoint(svc, dst.Port(), src, dst.Addr())
		if err != nil {
			return route{svc: svc}, fmt.Errorf("%w: %w", errNoHealthy, err)
		}
		r := route{svc: svc, dst: ep.Workload, addr: ep.Addr}
		if ep.Workload.HBONE() {
			r.hbone = true
			r.authority = ep.Addr.String()
			r.addr = netip.AddrPortFrom(ep.Addr.Addr(), wds.DefaultHBONEPort)
			r.expected = append(sans(svc), ep.Workload.Identity)
		}
		return r, nil
	case w != nil:
		if w.Waypoint != nil && !p.isWaypointFor(src, w.Waypoint) {
			return p.viaWaypoint(src, w.Waypoint, dst, nil, w)
		}
		r := route{dst: w, addr: dst}
		if w.HBONE() {
			r.hbone = true
			r.authority = dst.String()
			r.addr = netip.AddrPortFrom(dst.Addr(), wds.DefaultHBONEPort)
			r.expected = []identity.ID{w.Identity}
		}
		return r, nil
	default:
		return route{addr: dst}, nil
	}
}

// viaWaypoint tunnels to the waypoint with the original destination as
// authority.
func (p *Proxy) viaWaypoint(src *wds.Workload, gw *wds.Gateway, dst netip.AddrPort, svc *wds.Service, w *wds.Workload) (route, error) {
	addr, ids, err := p.waypointTarget(src, gw)
	if err != nil {
		return route{svc: svc, dst: w}, err
	}
	return route{hbone: true, waypoint: true, addr: addr, authority: dst.String(), expected: ids, svc: svc, dst: w}, nil
}

// waypointTarget resolves a gateway reference to one waypoint instance's
// HBONE address and the identities it may present.
func (p *Proxy) waypointTarget(src *wds.Workload, gw *wds.Gateway) (netip.AddrPort, []identity.ID, error) {
	var svc *wds.Service
	if gw.Service != "" {
		svc = p.cfg.Store.ServiceByKey(gw.Service)
		if svc == nil {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: waypoint service %s unknown", errNoRoute, gw.Service)
		}
	} else {
		w, s := p.cfg.Store.Lookup(gw.Addr)
		if w != nil {
			return netip.AddrPortFrom(gw.Addr.IP, gw.Port), []identity.ID{w.Identity}, nil
		}
		if s == nil {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: waypoint address %s unknown", errNoRoute, gw.Addr)
		}
		svc = s
	}
	ep, err := p.cfg.Store.PickEndpoint(svc, gw.Port, src, netip.IPv4Unspecified())
	if err != nil {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: waypoint %s: %w", errNoRoute, svc.Key, err)
	}
	return netip.AddrPortFrom(ep.Addr.Addr(), gw.Port), append(sans(svc), ep.Workload.Identity), nil
}

// waypointIdentities lists the identities of a gateway's instances.
func (p *Proxy) waypointIdentities(gw *wds.Gateway) []identity.ID {
	var ids []identity.ID
	if gw.Service == "" {
		w, s := p.cfg.Store.Lookup(gw.Addr)
		if w != nil {
			return []identity.ID{w.Identity}
		}
		if s == nil {
			return nil
		}
		ids = sans(s)
		gw = &wds.Gateway{Service: s.Key}
	}
	return append(ids, p.cfg.Store.EndpointIdentities(gw.Service)...)
}

// isWaypointFor reports whether src is itself an instance of gw (a waypoint
// does not send its own traffic back to itself).
func (p *Proxy) isWaypointFor(src *wds.Workload, gw *wds.Gateway) bool {
	if src == nil {
		return false
	}
	for _, id := range p.waypointIdentities(gw) {
		if id == src.Identity {
			return true
		}
	}
	return false
}

// sans parses a service's subject_alt_names as SPIFFE IDs, skipping any
// that are not.
func sans(svc *wds.Service) []identity.ID {
	var out []identity.ID
	for _, s := range svc.Proto.GetSubjectAltNames() {
		if id, err := identity.ParseID(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}
