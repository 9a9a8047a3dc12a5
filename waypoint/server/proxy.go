package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/backend"
	"github.com/weftmesh/weft/waypoint/httpproxy"
	"github.com/weftmesh/weft/waypoint/inbound"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/tcpproxy"
	"github.com/weftmesh/weft/waypoint/telemetry"
	"github.com/weftmesh/weft/waypoint/upstream"
)

// ProxyConfig configures the waypoint's data path, without the control
// plane connections (Run makes those; tests feed the stores themselves).
type ProxyConfig struct {
	// Identity and Certs are the waypoint's credentials. Required.
	Identity identity.ID
	Certs    upstream.Certificates
	// Mesh is the discovery state and L7 the L7 configuration. Required.
	Mesh *wds.Store
	L7   *l7config.Store
	// Recorder records metrics and access logs. Required.
	Recorder *telemetry.Recorder
	// Network is the waypoint's network.
	Network string
	// Gateway is the waypoint's Gateway as "namespace/name"; ServiceKey its
	// Service's discovery key; Addrs its own pod addresses.
	Gateway, ServiceKey string
	Addrs               []netip.Addr
	// AnyDestination serves destinations not bound to this waypoint
	// (tests only).
	AnyDestination bool
	// ConnectTimeout, SniffTimeout and DrainTimeout: see Config.
	ConnectTimeout, SniffTimeout, DrainTimeout time.Duration
	// Tracer continues traces (and may export spans); nil only propagates.
	Tracer httpproxy.Tracer
	// DialTCP opens upstream TCP connections (to endpoints' ztunnels);
	// nil dials directly. HBONEPort is the endpoints' ztunnel port
	// (default 15008).
	DialTCP   func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	HBONEPort uint16
	Log       *slog.Logger
}

// Proxy is the waypoint's data path: the HBONE listener and everything
// behind it.
type Proxy struct {
	cfg      ProxyConfig
	inbound  *inbound.Server
	http     *httpproxy.Server
	handler  *httpproxy.Handler
	dialer   *upstream.Dialer
	trans    *upstream.Transports
	backends *backend.Registry
}

// NewProxy assembles the data path.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.Certs == nil || cfg.Mesh == nil || cfg.L7 == nil || cfg.Recorder == nil {
		return nil, errors.New("waypoint proxy: Certs, Mesh, L7 and Recorder are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	dialer, err := upstream.NewDialer(upstream.Config{
		Certs: cfg.Certs, Identity: cfg.Identity, Workloads: cfg.Mesh, Network: cfg.Network,
		ConnectTimeout: cfg.ConnectTimeout, HBONEPort: cfg.HBONEPort, DialTCP: cfg.DialTCP,
		Log: cfg.Log.With("side", "upstream"),
	})
	if err != nil {
		return nil, err
	}
	trans := upstream.NewTransports(dialer, 90*time.Second)
	backends := backend.NewRegistry()
	tcp, err := tcpproxy.New(tcpproxy.Config{Mesh: cfg.Mesh, Dialer: dialer, Backends: backends,
		Config: cfg.L7.Current, Recorder: cfg.Recorder, Gateway: cfg.Gateway, Log: cfg.Log})
	if err != nil {
		_ = dialer.Close()
		return nil, err
	}
	h, err := httpproxy.NewHandler(httpproxy.Config{Mesh: cfg.Mesh, HTTP1: trans.HTTP1, HTTP2: trans.HTTP2,
		Dialer: dialer, Backends: backends, Config: cfg.L7.Current, Recorder: cfg.Recorder,
		Gateway: cfg.Gateway, Network: cfg.Network, Tracer: cfg.Tracer, Log: cfg.Log})
	if err != nil {
		_ = dialer.Close()
		return nil, err
	}
	hs := httpproxy.NewServer(h, cfg.Log)
	in, err := inbound.New(inbound.Config{
		Certs: cfg.Certs, Identity: cfg.Identity,
		Resolver: &inbound.Resolver{Mesh: cfg.Mesh, Network: cfg.Network, Key: cfg.ServiceKey, Addrs: cfg.Addrs,
			Config: cfg.L7.Current, AnyDestination: cfg.AnyDestination},
		HTTP: hs, TCP: tcp, SniffTimeout: cfg.SniffTimeout, DrainTimeout: cfg.DrainTimeout,
		Log: cfg.Log.With("side", "inbound"),
	})
	if err != nil {
		_ = dialer.Close()
		_ = hs.Shutdown(context.Background())
		return nil, err
	}
	return &Proxy{cfg: cfg, inbound: in, http: hs, handler: h, dialer: dialer, trans: trans, backends: backends}, nil
}

// Serve serves HBONE on ln until ctx ends, then drains, bounded by
// DrainTimeout: the tunnels get GOAWAY while the HTTP server closes idle
// keep-alive connections and finishes active requests; then the upstream
// pool is released.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	drain := p.cfg.DrainTimeout
	if drain <= 0 {
		drain = 30 * time.Second
	}
	sctx, stop := context.WithCancel(ctx)
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		<-sctx.Done()
		dctx, cancel := context.WithTimeout(context.Background(), drain)
		defer cancel()
		_ = p.http.Shutdown(dctx)
	}()
	err := p.inbound.Serve(sctx, ln)
	stop()
	<-httpDone
	p.handler.Wait()
	p.trans.Close()
	_ = p.dialer.Close()
	return err
}

// Stats is the admin view of the upstream pool and the backends.
func (p *Proxy) Stats() map[string]any {
	pool := map[string]any{}
	for k, s := range p.dialer.Stats() {
		pool[k.DstAddr.String()+" "+k.DstIdentities] = s
	}
	return map[string]any{"hbonePool": pool, "backends": p.backends.Stats()}
}
