package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/weftmesh/weft/pkg/admin"
	"github.com/weftmesh/weft/pkg/exepages"
	"github.com/weftmesh/weft/pkg/identity/caclient"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
	"github.com/weftmesh/weft/pkg/log"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/pkg/xds"
	"github.com/weftmesh/weft/waypoint/httpproxy"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/telemetry"
	"github.com/weftmesh/weft/waypoint/tracing"
)

// Run runs the waypoint until ctx ends, then drains: the HBONE listener
// closes, open tunnels and requests get DrainTimeout to finish.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Log.Output == nil {
		cfg.Log.Output = os.Stderr
	}
	logs, err := log.New(cfg.Log)
	if err != nil {
		return err
	}
	lg := logs.Logger("waypoint")
	id, _ := cfg.Identity()

	roots, err := readRoots(cfg.RootCertFile)
	if err != nil {
		return err
	}
	metrics := telemetry.NewMetrics()
	access := accessLog(cfg, logs)
	if c, ok := access.(interface{ Close() error }); ok {
		defer func() { _ = c.Close() }()
	}
	rec := telemetry.NewRecorder(metrics, access)
	mesh := wds.New(wds.Config{TrustDomain: cfg.TrustDomain, Network: cfg.Network, Log: logs.Logger("xds")})
	l7 := l7config.New(logs.Logger("xds"))

	ca, err := caclient.New(caclient.Config{Address: cfg.CAAddress, RootCAs: roots, TokenFile: cfg.TokenFile, ClusterID: cfg.ClusterID})
	if err != nil {
		return err
	}
	defer func() { _ = ca.Close() }()
	certs, err := certmgr.New(certmgr.Config{Fetcher: ca, Logger: logs.Logger("cert")})
	if err != nil {
		return err
	}
	defer func() { _ = certs.Close() }()
	certs.Track(id)
	defer certs.Forget(id)

	// Code that only start-up and configuration changes run need not stay
	// mapped (pkg/exepages).
	pages := exepages.NewReleaser(cfg.ReleasePagesAfter, exepages.Release, logs.Logger("waypoint"))
	defer pages.Close()
	handlers := map[string]xds.Handler{xds.AddressType: mesh, xds.AuthorizationType: mesh}
	for _, t := range l7config.Types {
		handlers[t] = l7
	}
	xdsClient := xds.NewClient(xds.Config{
		Address: cfg.XDSAddress, TLS: xdsTLS(cfg, roots), Node: nodeProto(cfg),
		Types:       append([]string{xds.AddressType, xds.AuthorizationType}, l7config.Types...),
		Handler:     dispatch{byType: handlers, metrics: metrics, l7Changed: pages.Changed},
		Log:         logs.Logger("xds"),
		DialOptions: []grpc.DialOption{grpc.WithPerRPCCredentials(xds.TokenCredentials{File: cfg.TokenFile, ClusterID: cfg.ClusterID, Secure: !cfg.XDSPlaintext})},
	})
	mesh.SetSubscriber(xdsClient)

	var tracer httpproxy.Tracer
	if cfg.OTLPEndpoint != "" {
		exp, err := tracing.New(ctx, tracing.Config{
			Endpoint: cfg.OTLPEndpoint, Insecure: cfg.OTLPInsecure, ServiceName: cfg.GatewayName + "." + cfg.PodNamespace,
			Attributes: map[string]string{"k8s.namespace.name": cfg.PodNamespace, "k8s.pod.name": cfg.PodName},
		})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = exp.Shutdown(sctx)
		}()
		tracer = exp
	}

	var addrs []netip.Addr
	if cfg.PodIP.IsValid() {
		addrs = append(addrs, cfg.PodIP)
	}
	px, err := NewProxy(ProxyConfig{
		Identity: id, Certs: certs, Mesh: mesh, L7: l7, Recorder: rec, Network: cfg.Network,
		Gateway: cfg.PodNamespace + "/" + cfg.GatewayName, ServiceKey: cfg.ServiceKey(), Addrs: addrs,
		ConnectTimeout: cfg.ConnectTimeout, SniffTimeout: cfg.SniffTimeout, DrainTimeout: cfg.DrainTimeout,
		Tracer: tracer, Log: logs.Logger("proxy"),
	})
	if err != nil {
		return err
	}

	ready := func() error {
		for _, w := range []struct {
			ch  <-chan struct{}
			msg string
		}{{mesh.Synced(), "waiting for workload discovery"}, {l7.Synced(), "waiting for the l7 configuration"}} {
			select {
			case <-w.ch:
			default:
				return errors.New(w.msg)
			}
		}
		for _, s := range certs.Snapshot() {
			if s.State == certmgr.StateAvailable {
				return nil
			}
		}
		return errors.New("waiting for the waypoint certificate")
	}
	adminHandler := admin.Handler(admin.Config{Name: "waypoint", Levels: logs, Sections: map[string]admin.Dump{
		"workloads":    func() any { return mesh.Dump().Workloads },
		"services":     func() any { return mesh.Dump().Services },
		"policies":     func() any { return mesh.Dump().Policies },
		"l7":           func() any { return l7.Dump() },
		"certificates": func() any { return certs.Snapshot() },
		"xds":          func() any { return xdsClient.Status() },
		"upstream":     func() any { return px.Stats() },
		"config":       func() any { return redacted(cfg) },
	}})

	hboneLn, err := net.Listen("tcp", cfg.HBONEAddr)
	if err != nil {
		return fmt.Errorf("hbone listener: %w", err)
	}
	servers := []*admin.Server{
		{Name: "admin", Addr: cfg.AdminAddr, Handler: adminHandler},
		{Name: "metrics", Addr: cfg.MetricsAddr, Handler: admin.Metrics(metrics.Registry)},
		{Name: "readiness", Addr: cfg.ReadinessAddr, Handler: admin.Readiness(ready)},
	}
	for _, s := range servers {
		if err := s.Listen(); err != nil {
			_ = hboneLn.Close()
			for _, o := range servers {
				o.Close()
			}
			return err
		}
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	proxyCtx, stopProxy := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	spawn := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	spawn("xds", func() error { return xdsClient.Run(runCtx) })
	spawn("release start-up pages", func() error { pages.ReadyAfter(runCtx, mesh.Synced(), l7.Synced()); return nil })
	proxyDone := make(chan struct{})
	spawn("hbone", func() error { defer close(proxyDone); return px.Serve(proxyCtx, hboneLn) })
	for _, s := range servers {
		spawn(s.Name+" server", s.Serve)
	}
	lg.Info("waypoint started", "identity", id.String(), "gateway", cfg.PodNamespace+"/"+cfg.GatewayName,
		"xds", cfg.XDSAddress, "hbone", cfg.HBONEAddr)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		lg.Error("waypoint component failed", "error", runErr)
	}
	lg.Info("waypoint draining", "timeout", cfg.DrainTimeout)
	// The proxy drains first while xDS and the status endpoints stay up,
	// so routing stays current until the last request.
	stopProxy()
	<-proxyDone
	drainCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopRun()
	for _, s := range servers {
		s.Shutdown(drainCtx)
	}
	wg.Wait()
	lg.Info("waypoint stopped")
	return runErr
}

// redacted is the configuration as /config_dump shows it.
func redacted(cfg Config) map[string]any {
	return map[string]any{
		"xdsAddress": cfg.XDSAddress, "caAddress": cfg.CAAddress, "clusterId": cfg.ClusterID,
		"trustDomain": cfg.TrustDomain, "network": cfg.Network, "podName": cfg.PodName,
		"podNamespace": cfg.PodNamespace, "gatewayName": cfg.GatewayName, "serviceAccount": cfg.ServiceAccount,
		"hboneAddress": cfg.HBONEAddr, "drainTimeout": cfg.DrainTimeout.String(),
		"connectTimeout": cfg.ConnectTimeout.String(), "sniffTimeout": cfg.SniffTimeout.String(),
		"otlpEndpoint": cfg.OTLPEndpoint, "releasePagesAfter": cfg.ReleasePagesAfter.String(),
	}
}

// accessLogFlush bounds how long an access-log record waits to be written
// with others (Envoy's default is a second).
const accessLogFlush = 100 * time.Millisecond

// accessLog is the access logger cfg asks for: nil when off, the
// hand-encoded, buffered JSON writer in the JSON log format (gated by the "access"
// component's level), else records through slog.
func accessLog(cfg Config, logs *log.Root) telemetry.AccessLogger {
	if !cfg.AccessLog {
		return nil
	}
	lg := logs.Logger("access")
	if cfg.Log.Format != log.FormatJSON && cfg.Log.Format != "" {
		return telemetry.SlogAccessLog{Logger: lg}
	}
	return telemetry.NewJSONAccessLog(cfg.Log.Output, "access", func() bool {
		return lg.Enabled(context.Background(), slog.LevelInfo)
	}, accessLogFlush)
}
