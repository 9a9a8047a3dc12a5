package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/l4authz"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
)

// errDenied marks a connection refused by policy.
var errDenied = errors.New("denied")

// inboundHBONE serves one CONNECT received on the pod's 15008.
// id is the identity the pod's 15008 presents.
func (p *Proxy) inboundHBONE(ctx context.Context, pod *inpod.Pod, id identity.ID, open *openConns, req InboundRequest, s InboundStream) {
	if k := p.openInboundHBONE(ctx, pod, id, open, req, s); k != nil {
		k.carry()
	}
}

// openInboundHBONE authorizes the CONNECT, connects to the application
// and accepts the tunnel; it returns nil, having answered the request and
// recorded the failure, when the connection cannot be carried.
func (p *Proxy) openInboundHBONE(ctx context.Context, pod *inpod.Pod, id identity.ID, open *openConns, req InboundRequest, s InboundStream) *carried {
	rec := p.cfg.Recorder.Start()
	rec.Direction, rec.Workload, rec.Protocol = "inbound", pod.UID, "HBONE"
	if req.Transport != "" {
		rec.Protocol = req.Transport
	}
	rec.Labels.Reporter, rec.Labels.SecurityPolicy = "destination", "mutual_tls"
	rec.SrcIdentity, rec.DstIdentity = req.Peer.String(), id.String()
	rec.SrcAddr = req.PeerAddr
	rec.Src = peerOf(p.cfg.Store.WorkloadByIP(wds.NetAddr{Network: p.cfg.Network, IP: req.PeerAddr.Addr()}), req.Peer)
	select {
	case <-pod.Draining():
		// New streams on a connection opened before the drain go elsewhere.
		s.Reject(http.StatusServiceUnavailable)
		rec.Failed("DC", errors.New("pod is draining"))
		return nil
	default:
	}

	target, err := netip.ParseAddrPort(req.Authority)
	if err != nil {
		s.Reject(http.StatusBadRequest)
		rec.Failed("NR", fmt.Errorf("authority %q: %w", req.Authority, err))
		return nil
	}
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	rec.DstAddr = target
	if isZtunnelPort(target.Port()) {
		s.Reject(http.StatusBadRequest)
		rec.Failed("NR", fmt.Errorf("authority %s targets a ztunnel port", target))
		return nil
	}
	dstW, err := p.localWorkload(ctx, pod, target.Addr())
	if err != nil {
		s.Reject(http.StatusServiceUnavailable)
		rec.Failed("NR", err)
		return nil
	}
	rec.Dst = peerOf(dstW, identity.ID{})
	changed := p.cfg.Store.Changed()
	if err := p.authorize(dstW, req.PeerAddr.Addr(), target, req.Peer); err != nil {
		s.Reject(http.StatusUnauthorized)
		rec.Failed("DENY", err)
		return nil
	}
	// The application sees the client's address: the tunnel's source, or,
	// through the destination's waypoint, the original client it forwards.
	src := req.PeerAddr.Addr()
	if dstW.Waypoint != nil {
		if fwd, ok := forwardedFor(req.Header.Get("Forwarded")); ok {
			src = fwd
		}
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	upstream, err := p.dialApp(dctx, pod, src, target)
	cancel()
	if err != nil {
		s.Reject(http.StatusServiceUnavailable)
		rec.Failed("UF", err)
		return nil
	}
	tunnel, err := s.Accept()
	if err != nil {
		_ = upstream.Close()
		rec.Failed("DC", err)
		return nil
	}
	oc, remove := p.admit(pod, open, changed, authzInput{req.PeerAddr.Addr(), target, req.Peer}, tunnel, upstream)
	// Bytes sent are towards the destination application.
	return &carried{rec: rec, client: tunnel, upstream: upstream, oc: oc, remove: remove}
}

// inboundPlain serves one plaintext connection redirected to 15006.
func (p *Proxy) inboundPlain(ctx context.Context, pod *inpod.Pod, open *openConns, c net.Conn) {
	if k := p.openInboundPlain(ctx, pod, open, c); k != nil {
		k.carry()
	}
}

// openInboundPlain authorizes c and connects to the application; it
// returns nil, the failure recorded, when c cannot be carried.
func (p *Proxy) openInboundPlain(ctx context.Context, pod *inpod.Pod, open *openConns, c net.Conn) *carried {
	rec := p.cfg.Recorder.Start()
	rec.Direction, rec.Workload, rec.Protocol = "inbound", pod.UID, "TCP"
	rec.Labels.Reporter = "destination"
	rec.SrcAddr = addrPortOf(c.RemoteAddr())
	rec.Src = peerOf(p.cfg.Store.WorkloadByIP(wds.NetAddr{Network: p.cfg.Network, IP: rec.SrcAddr.Addr()}), identity.ID{})
	target, err := originalDst(c)
	if err != nil {
		rec.Failed("NR", err)
		return nil
	}
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	rec.DstAddr = target
	dstW, err := p.localWorkload(ctx, pod, target.Addr())
	if err != nil {
		rec.Failed("NR", err)
		return nil
	}
	rec.Dst = peerOf(dstW, identity.ID{})
	changed := p.cfg.Store.Changed()
	if err := p.authorize(dstW, rec.SrcAddr.Addr(), target, identity.ID{}); err != nil {
		rec.Failed("DENY", err)
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	upstream, err := p.dialApp(dctx, pod, rec.SrcAddr.Addr(), target)
	cancel()
	if err != nil {
		rec.Failed("UF", err)
		return nil
	}
	oc, remove := p.admit(pod, open, changed, authzInput{rec.SrcAddr.Addr(), target, identity.ID{}}, c, upstream)
	return &carried{rec: rec, client: c, upstream: upstream, oc: oc, remove: remove}
}

// localWorkload finds the workload at ip and checks it is pod. It waits,
// bounded by ReadyTimeout, for the state to learn it: without the pod's
// configuration its policies are unknown, so the connection is refused.
func (p *Proxy) localWorkload(ctx context.Context, pod *inpod.Pod, ip netip.Addr) (*wds.Workload, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	na := wds.NetAddr{Network: p.cfg.Network, IP: ip}
	for {
		changed := p.cfg.Store.Changed()
		if w := p.cfg.Store.WorkloadByIP(na); w != nil {
			if w.Name() != pod.Name || w.Namespace() != pod.Namespace {
				return nil, fmt.Errorf("destination %s is %s/%s, not this pod %s/%s", ip, w.Namespace(), w.Name(), pod.Namespace, pod.Name)
			}
			return w, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("no configuration for destination %s", ip)
		}
	}
}

// authorize applies the destination's L4 policies and its waypoint
// requirement. A zero peer is a plaintext connection.
func (p *Proxy) authorize(dst *wds.Workload, src netip.Addr, target netip.AddrPort, peer identity.ID) error {
	dryRun, err := p.check(dst, src, target, peer)
	if len(dryRun) > 0 {
		p.log.Info("dry-run policies matched", "dry_run", dryRun, "peer", peer.String(), "dst", target.String())
	}
	return err
}

// check is authorize without logging: it returns the dry-run policies
// that matched and the refusal, if any.
func (p *Proxy) check(dst *wds.Workload, src netip.Addr, target netip.AddrPort, peer identity.ID) ([]string, error) {
	d := p.cfg.Store.Authorizer().Evaluate(
		l4authz.Target{Namespace: dst.Namespace(), Policies: dst.Proto.GetAuthorizationPolicies()},
		l4authz.Conn{SrcIP: src, DstIP: target.Addr(), DstPort: target.Port(), Identity: peer})
	return d.DryRun, p.admitted(d, dst, peer)
}

// admitted turns a policy decision and the destination's waypoint
// requirement into the refusal, if any.
func (p *Proxy) admitted(d l4authz.Decision, dst *wds.Workload, peer identity.ID) error {
	if !d.Allowed {
		return fmt.Errorf("%w: %s %s", errDenied, d.Reason, d.Policy)
	}
	if dst.Waypoint != nil {
		for _, id := range p.waypointIdentities(dst.Waypoint) {
			if !peer.IsZero() && id == peer {
				return nil
			}
		}
		return fmt.Errorf("%w: destination requires its waypoint", errDenied)
	}
	return nil
}

// dialApp connects to the application inside the pod, from the client's
// address when PreserveSource is set and the kernel allows it. The
// connection closes abortively unless it ends cleanly (linger.go).
func (p *Proxy) dialApp(ctx context.Context, pod *inpod.Pod, src netip.Addr, target netip.AddrPort) (net.Conn, error) {
	c, err := p.dialAppFrom(ctx, pod, src, target)
	if err != nil {
		return nil, err
	}
	abortOnClose(c)
	return c, nil
}

func (p *Proxy) dialAppFrom(ctx context.Context, pod *inpod.Pod, src netip.Addr, target netip.AddrPort) (net.Conn, error) {
	if p.cfg.PreserveSource && src.IsValid() && src != target.Addr() {
		c, err := pod.DialFrom(ctx, src, target)
		if err == nil || !transparentUnsupported(err) {
			return c, err
		}
		p.log.Debug("cannot preserve source address, connecting from the pod address", "error", err)
	}
	return pod.Dial(ctx, target)
}

// forwardedFor returns the address of the first for= element of a
// Forwarded header (RFC 7239), e.g. for="10.0.0.1:4321" or
// for="[fd00::1]:80".
func forwardedFor(h string) (netip.Addr, bool) {
	for _, elem := range strings.Split(h, ",") {
		for _, pair := range strings.Split(elem, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || !strings.EqualFold(k, "for") {
				continue
			}
			v = strings.Trim(v, `"`)
			if ap, err := netip.ParseAddrPort(v); err == nil {
				return ap.Addr().Unmap(), true
			}
			if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
				return a.Unmap(), true
			}
			return netip.Addr{}, false
		}
	}
	return netip.Addr{}, false
}

// isZtunnelPort reports ztunnel's own in-pod ports, which are never a
// connection's final target (that would loop).
func isZtunnelPort(p uint16) bool {
	return p == inpod.OutboundPort || p == inpod.InboundPlainPort || p == inpod.InboundHBONEPort
}

func transparentUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EADDRNOTAVAIL) ||
		errors.Is(err, syscall.ENOPROTOOPT) || errors.Is(err, syscall.EINVAL)
}
