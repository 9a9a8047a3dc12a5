package udp

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/wds"
)

const directionOutbound = "outbound"

// outbound handles one datagram from the listener: it goes to the flow of
// its 5-tuple, or opens one.
func (s *Service) outbound(pf *podFlows, src, dst netip.AddrPort, b []byte) {
	key := flowKey{src, dst}
	pf.mu.Lock()
	f := pf.outbound[key]
	pf.mu.Unlock()
	if f != nil {
		if f.fromApp(b, s.cfg.RetryFailed) {
			return
		}
		f.close() // opening it failed a while ago: open it again
	}
	if isOwnPort(dst.Port()) && dst.Addr().IsLoopback() {
		s.cfg.Metrics.drop(directionOutbound, dropNoEndpoint)
		return
	}
	f = newFlow(directionOutbound, src, dst, s.cfg.Metrics)
	if ok, reason := s.add(pf, f, &key); !ok {
		s.cfg.Metrics.drop(directionOutbound, reason)
		return
	}
	f.fromApp(b, s.cfg.RetryFailed) // queued until the upstream is open
	go s.openOutbound(pf, f)
}

// route is where an outbound flow goes.
type route struct {
	dst    *wds.Workload  // nil: outside the mesh
	target netip.AddrPort // the endpoint address and port
}

// resolve finds the flow's destination as TCP does: a service VIP picks an
// endpoint and maps the port, a workload address is the target itself.
func (s *Service) resolve(src *wds.Workload, dst netip.AddrPort) (route, string, error) {
	na := wds.NetAddr{Network: s.cfg.Network, IP: dst.Addr().Unmap()}
	w, svc := s.cfg.Store.Lookup(na)
	if svc != nil && svc.Proto.GetLoadBalancing().GetMode() == wl.LoadBalancing_PASSTHROUGH {
		w, svc = s.cfg.Store.WorkloadByIP(na), nil
	}
	switch {
	case svc != nil:
		if svc.Waypoint != nil {
			return route{}, dropWaypoint, fmt.Errorf("service %s has a waypoint, which does not carry udp", svc.Key)
		}
		ep, err := s.cfg.Store.PickEndpoint(svc, dst.Port(), src, dst.Addr())
		if err != nil {
			return route{}, dropNoEndpoint, fmt.Errorf("service %s: %w", svc.Key, err)
		}
		return s.toWorkload(ep.Workload, ep.Addr)
	case w != nil:
		return s.toWorkload(w, dst)
	}
	return route{target: dst}, "", nil
}

func (s *Service) toWorkload(w *wds.Workload, target netip.AddrPort) (route, string, error) {
	if !w.HBONE() {
		// In the registry but not in the mesh: plain UDP, as TCP goes.
		return route{target: target}, "", nil
	}
	if w.Waypoint != nil {
		return route{}, dropWaypoint, fmt.Errorf("workload %s has a waypoint, which does not carry udp", w.UID)
	}
	if !w.QUIC {
		return route{}, dropNoQUIC, fmt.Errorf("workload %s does not advertise quic; udp through the mesh needs it", w.UID)
	}
	return route{dst: w, target: target}, "", nil
}

// openOutbound opens the flow's upstream.
func (s *Service) openOutbound(pf *podFlows, f *flow) {
	log := s.cfg.Log.With("pod", pf.pod.Namespace+"/"+pf.pod.Name, "src", f.src.String(), "dst", f.dst.String())
	fail := func(reason string, err error) {
		log.Debug("udp flow refused", "reason", reason, "error", err)
		f.fail(reason, err)
	}
	ctx, cancel := s.connectCtx(f)
	defer cancel()
	if pf.raw == nil {
		fail(dropConnectFailed, errors.New("no raw socket in the pod to answer from the original destination"))
		return
	}
	// Replies come from the original destination.
	f.setApp(replyConn{w: pf.raw, from: f.dst, to: f.src})
	srcW := s.cfg.Store.WorkloadByUID(s.cfg.ClusterID + "//Pod/" + pf.pod.Namespace + "/" + pf.pod.Name)
	r, reason, err := s.resolve(srcW, f.dst)
	if err != nil {
		fail(reason, err)
		return
	}
	var up upstream
	path, peer := pathPassthrough, ""
	if r.dst != nil {
		dc, err := s.cfg.Tunnels.ConnectUDP(ctx, pf.pod, r.dst, r.target)
		if err != nil {
			reason := dropConnectFailed
			if isDenied(err) {
				reason = dropDenied
			}
			fail(reason, err)
			return
		}
		up, path, peer = tunnelUp{dc}, pathTunnel, dc.PeerIdentity()
	} else {
		c, err := pf.sockets.Dial(ctx, r.target)
		if err != nil {
			fail(dropConnectFailed, err)
			return
		}
		up = connUp{c}
	}
	if !f.ready(up, path, peer, r.target) {
		_ = up.close()
		return
	}
	log.Debug("udp flow opened", "path", path, "target", r.target.String())
	go f.pumpUp(up)
}

// isDenied reports a CONNECT-UDP refused by the destination's policy.
func isDenied(err error) bool {
	var se *hbone.StatusError
	return errors.As(err, &se) && (se.Code == http.StatusForbidden || se.Code == http.StatusUnauthorized)
}

// isOwnPort reports ztunnel's in-pod ports.
func isOwnPort(p uint16) bool {
	return p == ListenPort || p == 15001 || p == 15006 || p == 15008
}
