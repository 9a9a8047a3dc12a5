package tcpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/l4authz"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/authz"
	"github.com/weftmesh/weft/waypoint/backend"
	"github.com/weftmesh/weft/waypoint/flow"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/telemetry"
)

// Mesh is what the proxy reads of discovery; wds.Store implements it.
type Mesh interface {
	Endpoints(svc *wds.Service, port uint16, like netip.Addr) []wds.Endpoint
	Authorizer() *l4authz.Engine
}

var _ Mesh = (*wds.Store)(nil)

// Dialer opens upstream connections; upstream.Dialer implements it.
type Dialer interface {
	Dial(ctx context.Context, ep netip.AddrPort, hdr http.Header) (net.Conn, error)
}

// Config configures a Proxy.
type Config struct {
	Mesh     Mesh
	Dialer   Dialer
	Backends *backend.Registry
	// Config returns the L7 configuration in force.
	Config   func() *l7config.Snapshot
	Recorder *telemetry.Recorder
	// Gateway is the waypoint's Gateway as "namespace/name".
	Gateway string
	Log     *slog.Logger
}

// Proxy forwards TCP flows. It implements inbound.ConnHandler.
type Proxy struct{ cfg Config }

// New returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Mesh == nil || cfg.Dialer == nil || cfg.Backends == nil || cfg.Config == nil || cfg.Recorder == nil {
		return nil, errors.New("tcpproxy: Mesh, Dialer, Backends, Config and Recorder are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{cfg: cfg}, nil
}

// ServeFlow forwards c until both directions end.
func (p *Proxy) ServeFlow(ctx context.Context, f *flow.Flow, c net.Conn) {
	rec := p.cfg.Recorder.StartConn(telemetry.LabelsOf(f))
	rec.Src = f.Source.Addr
	defer rec.Closed()
	snap := p.cfg.Config()

	ep, done, err := p.pick(f, snap)
	if err != nil {
		rec.Labels.ResponseFlags, rec.Err = "UH", err
		return
	}
	rec.Dst = ep.Addr
	rec.Labels.Destination = telemetry.PeerOf(ep.Workload, "")
	if err := p.authorize(f, snap, ep); err != nil {
		done(0, nil)
		rec.Labels.ResponseFlags, rec.Err = "DENY", err
		return
	}
	var b *backend.Backend
	if f.Destination.Service != nil {
		b = p.cfg.Backends.Get(f.Destination.Service.Hostname(), snap.Traffic(f.Destination.Service.Hostname()))
		release, err := b.Pool.AcquireConn()
		if err != nil {
			done(0, nil)
			rec.Labels.ResponseFlags, rec.Err = "UO", err
			return
		}
		defer release()
	}
	start := time.Now()
	hdr := http.Header{}
	hdr.Set("Forwarded", forwarded(f))
	up, err := p.cfg.Dialer.Dial(ctx, ep.Addr, hdr)
	done(time.Since(start), err)
	if b != nil && b.Outliers != nil {
		// A TCP flow has no status: a connection is a success.
		b.Outliers.Report(ep.Addr, http.StatusOK, err)
	}
	if err != nil {
		rec.Labels.ResponseFlags, rec.Err = "UF", err
		return
	}
	defer func() { _ = up.Close() }()
	rec.Opened()
	rec.Sent, rec.Received, rec.Err = Splice(c, up)
}

// pick chooses the endpoint: the addressed pod, or one of the Service's
// endpoints by the backend's balancer.
func (p *Proxy) pick(f *flow.Flow, snap *l7config.Snapshot) (wds.Endpoint, func(time.Duration, error), error) {
	noop := func(time.Duration, error) {}
	d := f.Destination
	if d.Service == nil {
		return wds.Endpoint{Workload: d.Workload, Addr: d.Authority}, noop, nil
	}
	eps := p.cfg.Mesh.Endpoints(d.Service, d.Port, d.Authority.Addr())
	if len(eps) == 0 {
		return wds.Endpoint{}, nil, fmt.Errorf("service %s: %w", d.Service.Key, wds.ErrNoEndpoints)
	}
	addrs := make([]netip.AddrPort, len(eps))
	for i, ep := range eps {
		addrs[i] = ep.Addr
	}
	b := p.cfg.Backends.Get(d.Service.Hostname(), snap.Traffic(d.Service.Hostname()))
	b.SetEndpoints(d.Port, addrs)
	a, done := b.Pick(addrs)
	for _, ep := range eps {
		if ep.Addr == a {
			return ep, func(rtt time.Duration, err error) { done(rtt, err) }, nil
		}
	}
	done(0, nil)
	return eps[0], noop, nil
}

// authorize applies the endpoint's L4 policies with the original client's
// identity, then the waypoint's L7 policies with no HTTP attributes.
func (p *Proxy) authorize(f *flow.Flow, snap *l7config.Snapshot, ep wds.Endpoint) error {
	target := l4authz.Target{Namespace: f.Destination.Namespace()}
	if ep.Workload != nil {
		target = l4authz.Target{Namespace: ep.Workload.Namespace(), Policies: ep.Workload.Proto.GetAuthorizationPolicies()}
	}
	d := p.cfg.Mesh.Authorizer().Evaluate(target, l4authz.Conn{
		SrcIP: f.Source.Addr.Addr(), DstIP: ep.Addr.Addr(), DstPort: ep.Addr.Port(), Identity: f.Source.Principal})
	if !d.Allowed {
		return fmt.Errorf("denied: %s %s", d.Reason, d.Policy)
	}
	if snap.Policies == nil {
		return nil
	}
	v := snap.Policies.Evaluate(&authz.Request{
		Gateway: p.cfg.Gateway, Service: f.ServiceName(),
		SourcePrincipal: f.SourcePrincipal(), SourceIP: f.Source.Addr.Addr(), Port: f.Destination.Port,
		DestinationIP: f.Destination.Authority.Addr(), TCP: true,
	})
	if !v.Allow {
		return fmt.Errorf("denied by l7 policy %s", v.Policy)
	}
	return nil
}

// forwarded is the Forwarded header that tells the destination ztunnel the
// original client.
func forwarded(f *flow.Flow) string {
	v := `for="` + f.Source.Addr.String() + `"`
	if h := f.Destination.Hostname(); h != "" {
		v += ";host=" + h
	}
	return v
}

// Splice copies a→b and b→a until both directions end, half-closing each
// side as its source ends. It returns the bytes sent to b and received from
// it, and the first error other than a clean end.
func Splice(a, b net.Conn) (sent, received int64, err error) {
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(1)
	go func() {
		defer wg.Done()
		received, errB = io.Copy(a, b)
		closeWrite(a)
		if errB != nil {
			_ = a.Close()
		}
	}()
	sent, errA = io.Copy(b, a)
	closeWrite(b)
	if errA != nil {
		_ = b.Close()
	}
	wg.Wait()
	if errA != nil {
		return sent, received, errA
	}
	return sent, received, errB
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
