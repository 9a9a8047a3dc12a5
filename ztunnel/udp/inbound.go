package udp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/l4authz"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
)

const directionInbound = "inbound"

// UDPRequest is what HandleUDP needs of a CONNECT-UDP request;
// *hbone3.UDPRequest implements it through udpRequest.
type UDPRequest interface {
	Target() netip.AddrPort
	PeerIdentity() string
	RemoteAddr() net.Addr
	Reject(status int) error
	Accept() (*hbone3.DatagramConn, error)
}

// HandleUDP serves one CONNECT-UDP request that arrived on pod's QUIC
// listener (tunnel.Config.HandleUDP): the target must be pod, L4 policy
// must allow the peer (403 otherwise), and the flow's datagrams reach the
// application from the client pod's address. It returns when the flow
// ends.
func (s *Service) HandleUDP(ctx context.Context, pod *inpod.Pod, req *hbone3.UDPRequest) {
	s.handle(ctx, pod, udpRequest{req})
}

type udpRequest struct{ r *hbone3.UDPRequest }

func (u udpRequest) Target() netip.AddrPort                { return u.r.Target }
func (u udpRequest) PeerIdentity() string                  { return u.r.PeerIdentity }
func (u udpRequest) RemoteAddr() net.Addr                  { return u.r.RemoteAddr }
func (u udpRequest) Reject(status int) error               { return u.r.Reject(status) }
func (u udpRequest) Accept() (*hbone3.DatagramConn, error) { return u.r.Accept() }

func (s *Service) handle(ctx context.Context, pod *inpod.Pod, req UDPRequest) {
	log := s.cfg.Log.With("pod", pod.Namespace+"/"+pod.Name, "peer", req.PeerIdentity(), "target", req.Target().String())
	refuse := func(status int, reason string, err error) {
		_ = req.Reject(status)
		s.cfg.Metrics.drop(directionInbound, reason)
		log.Debug("udp flow refused", "status", status, "error", err)
	}
	peer, err := identity.ParseID(req.PeerIdentity())
	if err != nil {
		refuse(http.StatusUnauthorized, dropDenied, err)
		return
	}
	target := netip.AddrPortFrom(req.Target().Addr().Unmap(), req.Target().Port())
	if isOwnPort(target.Port()) {
		refuse(http.StatusBadRequest, dropNoEndpoint, fmt.Errorf("target %s is a ztunnel port", target))
		return
	}
	src := addrOf(req.RemoteAddr())
	if !src.IsValid() {
		refuse(http.StatusBadRequest, dropNoEndpoint, fmt.Errorf("no peer address"))
		return
	}
	dstW, err := s.localWorkload(ctx, pod, target.Addr())
	if err != nil {
		refuse(http.StatusServiceUnavailable, dropNoEndpoint, err)
		return
	}
	if err := s.authorize(dstW, src, target, peer); err != nil {
		refuse(http.StatusForbidden, dropDenied, err)
		return
	}
	f := newFlow(directionInbound, netip.AddrPortFrom(src, 0), target, s.cfg.Metrics)
	f.authz = &authzInput{src: src, target: target, peer: peer}
	pf := s.podFlows(pod)
	if ok, reason := s.add(pf, f, nil); !ok {
		refuse(http.StatusServiceUnavailable, reason, fmt.Errorf("flow not admitted: %s", reason))
		return
	}
	defer f.close()
	// The application sees the client pod's address (any port, as TCP).
	cctx, cancel := s.connectCtx(f)
	app, err := pf.sockets.DialFrom(cctx, netip.AddrPortFrom(src, 0), target)
	cancel()
	if err != nil {
		refuse(http.StatusServiceUnavailable, dropConnectFailed, err)
		return
	}
	if !f.setApp(app) {
		_ = app.Close()
		refuse(http.StatusServiceUnavailable, dropDraining, fmt.Errorf("pod is draining"))
		return
	}
	dc, err := req.Accept()
	if err != nil {
		s.cfg.Metrics.drop(directionInbound, dropConnectFailed)
		return
	}
	up := tunnelUp{dc}
	if !f.ready(up, pathTunnel, req.PeerIdentity(), target) {
		_ = up.close()
		return
	}
	// Here the tunnel is what the client sends: its datagrams go to the
	// application, whose replies go back up.
	inb := &inboundFlow{f}
	go inb.fromTunnel(up)
	go inb.fromApp(app)
	select {
	case <-f.done:
	case <-ctx.Done():
	}
}

// inboundFlow pumps an inbound flow: tunnel → application is "sent"
// (towards the destination application), application → tunnel is
// "received".
type inboundFlow struct{ f *flow }

func (i *inboundFlow) fromTunnel(up upstream) {
	f := i.f
	buf := make([]byte, maxDatagram)
	for {
		b, err := up.recv(f.ctx, buf)
		if err != nil {
			f.close()
			return
		}
		f.last.touch()
		if _, err := f.app.Write(b); err != nil {
			f.m.drop(f.direction, dropWriteFailed)
			continue
		}
		f.countSent(pathTunnel, len(b))
	}
}

func (i *inboundFlow) fromApp(app net.Conn) {
	f := i.f
	buf := make([]byte, maxDatagram)
	for {
		n, err := app.Read(buf)
		if err != nil {
			f.close()
			return
		}
		f.last.touch()
		if err := f.up.send(buf[:n]); err != nil {
			f.m.drop(f.direction, dropWriteFailed)
			continue
		}
		f.countReceived(pathTunnel, n)
	}
}

// authzInput is what an inbound flow's authorization looked at.
type authzInput struct {
	src    netip.Addr
	target netip.AddrPort
	peer   identity.ID
}

// localWorkload finds the workload at ip and checks it is pod, waiting
// (bounded) for the state to learn it: without its configuration its
// policies are unknown, so the flow is refused.
func (s *Service) localWorkload(ctx context.Context, pod *inpod.Pod, ip netip.Addr) (*wds.Workload, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	na := wds.NetAddr{Network: s.cfg.Network, IP: ip}
	for {
		changed := s.cfg.Store.Changed()
		if w := s.cfg.Store.WorkloadByIP(na); w != nil {
			if w.Name() != pod.Name || w.Namespace() != pod.Namespace {
				return nil, fmt.Errorf("target %s is %s/%s, not this pod %s/%s", ip, w.Namespace(), w.Name(), pod.Namespace, pod.Name)
			}
			return w, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("no configuration for target %s", ip)
		}
	}
}

// authorize applies the destination's L4 policies as TCP inbound does. A
// destination behind a waypoint only takes traffic from it, and UDP never
// comes through one, so its flows are refused.
func (s *Service) authorize(dst *wds.Workload, src netip.Addr, target netip.AddrPort, peer identity.ID) error {
	d := s.cfg.Store.Authorizer().Evaluate(
		l4authz.Target{Namespace: dst.Namespace(), Policies: dst.Proto.GetAuthorizationPolicies()},
		l4authz.Conn{SrcIP: src, DstIP: target.Addr(), DstPort: target.Port(), Identity: peer})
	if len(d.DryRun) > 0 {
		s.cfg.Log.Info("dry-run policies matched", "dry_run", d.DryRun, "peer", peer.String(), "dst", target.String())
	}
	if !d.Allowed {
		return fmt.Errorf("denied: %s %s", d.Reason, d.Policy)
	}
	if dst.Waypoint != nil {
		return fmt.Errorf("denied: destination requires its waypoint, which does not carry udp")
	}
	return nil
}

func addrOf(a net.Addr) netip.Addr {
	switch t := a.(type) {
	case *net.UDPAddr:
		return t.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
