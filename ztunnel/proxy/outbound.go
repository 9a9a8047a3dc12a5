package proxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/telemetry"
)

// outbound carries one connection the pod made, redirected to 15001.
func (p *Proxy) outbound(ctx context.Context, pod *inpod.Pod, id identity.ID, c net.Conn) {
	if k := p.openOutbound(ctx, pod, id, c); k != nil {
		k.carry()
	}
}

// openOutbound resolves and dials the upstream of c; it returns nil, the
// failure recorded, when the connection cannot be carried.
func (p *Proxy) openOutbound(ctx context.Context, pod *inpod.Pod, id identity.ID, c net.Conn) *carried {
	rec := p.cfg.Recorder.Start()
	rec.Direction, rec.Workload = "outbound", pod.UID
	rec.Labels.Reporter = "source"
	rec.SrcAddr = addrPortOf(c.RemoteAddr())

	dst, err := originalDst(c)
	if err == nil && isOwnListener(dst) {
		err = fmt.Errorf("connection addressed to ztunnel's own port %s", dst)
	}
	if err != nil {
		rec.Failed("NR", err)
		return nil
	}
	rec.DstAddr = dst
	if id.IsZero() {
		rec.Failed("UAEX", errors.New("pod has no valid identity"))
		return nil
	}
	srcW := p.cfg.Store.WorkloadByIP(wds.NetAddr{Network: p.cfg.Network, IP: rec.SrcAddr.Addr()})
	rec.Src = peerOf(srcW, id)

	// Fail closed: no decision before the first xDS state has arrived.
	if err := p.waitSynced(ctx); err != nil {
		rec.Failed("NC", err)
		return nil
	}
	r, err := p.resolve(ctx, srcW, dst)
	fillDst(rec, r)
	if err != nil {
		flags := "UH"
		if errors.Is(err, errNoRoute) {
			flags = "NR"
		}
		rec.Failed(flags, err)
		return nil
	}

	dctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
	upstream, err := p.dialOutbound(dctx, pod, id, rec, r)
	cancel()
	if err != nil {
		flags := "UF"
		if errors.Is(err, ErrTunnelDenied) {
			flags = "DENY"
		}
		rec.Failed(flags, err)
		return nil
	}
	return &carried{rec: rec, client: c, upstream: upstream}
}

func (p *Proxy) dialOutbound(ctx context.Context, pod *inpod.Pod, id identity.ID, rec *telemetry.Conn, r route) (net.Conn, error) {
	if !r.hbone {
		rec.Protocol = "TCP"
		return pod.Dial(ctx, r.addr)
	}
	rec.Protocol = "HBONE"
	rec.HBONEAddr = r.addr
	rec.Labels.SecurityPolicy = "mutual_tls"
	// Fail closed: wait (bounded) for the pod's certificate; never fall
	// back to plaintext.
	cctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	_, err := p.cfg.Certs.Get(cctx, id)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("no certificate for %s: %w", id, err)
	}
	h := http.Header{}
	fwd := `for="` + rec.SrcAddr.String() + `"`
	if r.svc != nil {
		fwd += ";host=" + r.svc.Hostname()
	}
	h.Set("Forwarded", fwd)
	h.Set("Traceparent", traceparent())
	if b := p.baggage(rec.Src, pod); b != "" {
		h.Set("Baggage", b)
	}
	c, err := p.cfg.Tunnels.Connect(ctx, TunnelRequest{
		Pod: pod, Source: id, SourceIP: rec.SrcAddr.Addr(), Addr: r.addr,
		Expected: r.expected, Authority: r.authority, Header: h,
	})
	if err != nil {
		return nil, err
	}
	rec.SrcIdentity = id.String()
	if pi, ok := c.(peerIdentifier); ok {
		rec.DstIdentity = pi.PeerIdentity()
	}
	if t, ok := c.(transporter); ok {
		rec.Protocol = t.Transport()
	}
	return c, nil
}

// transporter is implemented by tunnels of a transport other than HTTP/2
// (HBONE over QUIC), which name it for the connection table.
type transporter interface{ Transport() string }

// peerIdentifier is implemented by tunnels that know the server's verified
// identity (pkg/hbone's Stream).
type peerIdentifier interface{ PeerIdentity() string }

// baggage describes the source workload as Istio's ztunnel does.
func (p *Proxy) baggage(src telemetry.Peer, pod *inpod.Pod) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("k8s.cluster.name", p.cfg.ClusterID)
	add("k8s.namespace.name", pod.Namespace)
	add("k8s.pod.name", pod.Name)
	add("service.name", src.CanonicalService)
	add("service.version", src.CanonicalRevision)
	return strings.Join(parts, ",")
}

// traceparent starts a W3C trace for the tunnel (version 00, sampled).
func traceparent() string {
	var b [24]byte
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rand.Uint64())
	}
	return "00-" + hex.EncodeToString(b[:16]) + "-" + hex.EncodeToString(b[16:]) + "-01"
}

// waitSynced waits, bounded by ReadyTimeout, for the first xDS state.
func (p *Proxy) waitSynced(ctx context.Context) error {
	select {
	case <-p.cfg.Store.Synced():
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	select {
	case <-p.cfg.Store.Synced():
		return nil
	case <-ctx.Done():
		return errors.New("no xds configuration yet")
	}
}

func isOwnListener(a netip.AddrPort) bool {
	switch a.Port() {
	case inpod.OutboundPort, inpod.InboundPlainPort:
		return a.Addr().IsLoopback() || a.Addr().IsUnspecified()
	}
	return false
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// peerOf describes a workload for telemetry; id fills the principal when
// the workload is unknown.
func peerOf(w *wds.Workload, id identity.ID) telemetry.Peer {
	var pr telemetry.Peer
	if !id.IsZero() {
		pr.Principal = id.String()
		pr.Namespace = id.Namespace
	}
	if w == nil {
		return pr
	}
	wp := w.Proto
	pr.Workload = wp.GetWorkloadName()
	if pr.Workload == "" {
		pr.Workload = wp.GetName()
	}
	pr.Namespace = wp.GetNamespace()
	if id.IsZero() {
		pr.Principal = w.Identity.String()
	}
	pr.App, pr.Version = wp.GetCanonicalName(), wp.GetCanonicalRevision()
	pr.CanonicalService, pr.CanonicalRevision = wp.GetCanonicalName(), wp.GetCanonicalRevision()
	pr.Cluster = wp.GetClusterId()
	return pr
}

func fillDst(rec *telemetry.Conn, r route) {
	if r.dst != nil {
		rec.Dst = peerOf(r.dst, identity.ID{})
	}
	if r.svc != nil {
		rec.Labels.Service = r.svc.Hostname()
		rec.Labels.ServiceNamespace = r.svc.Namespace()
		rec.Labels.ServiceName = r.svc.Proto.GetName()
	}
}
