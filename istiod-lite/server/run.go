package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/weftmesh/weft/istiod-lite/ca"
	"github.com/weftmesh/weft/istiod-lite/gatewayclass"
	"github.com/weftmesh/weft/istiod-lite/kube"
	"github.com/weftmesh/weft/istiod-lite/l7"
	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/istiod-lite/waypoint"
	"github.com/weftmesh/weft/istiod-lite/xds"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// Run serves until ctx ends, then shuts down gracefully. It returns an
// error if the configuration is invalid, a listener cannot be opened, or a
// component fails.
func Run(ctx context.Context, cfg Config) error {
	start := time.Now()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tuneGC(cfg, cfg.Log)
	preferLists()
	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return err
	}
	rc.QPS, rc.Burst = cfg.KubeQPS, cfg.KubeBurst
	rc.UserAgent = "istiod-lite"
	// No gzip: inside a cluster bandwidth is cheap, and compressing the
	// initial lists costs the API server and istiod-lite CPU at start-up.
	rc.DisableCompression = true
	// Built-in kinds in protobuf: much cheaper to decode than JSON.
	pc := rest.CopyConfig(rc)
	pc.ContentType = "application/vnd.kubernetes.protobuf"
	pc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	kc, err := kubernetes.NewForConfig(pc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	ic, err := istioclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("istio client: %w", err)
	}
	gc, err := gatewayclient.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("gateway api client: %w", err)
	}
	return run(ctx, cfg, kube.Clients{Kube: kc, Istio: ic, Gateway: gc}, start)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config (set --kubeconfig outside a cluster): %w", err)
		}
		return rc, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return rc, nil
}

// run is Run with the clients given, for tests.
func run(ctx context.Context, cfg Config, clients kube.Clients, start time.Time) error {
	log := cfg.Log
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	m := model.New(model.Config{
		ClusterID: cfg.ClusterID, Network: cfg.Network, TrustDomain: cfg.TrustDomain, DomainSuffix: cfg.DomainSuffix,
		RootNamespace: cfg.RootNamespace, RequireRedirection: cfg.RequireRedirection, HBONEQUIC: cfg.HBONEQUIC,
	}, log.With("component", "model"))
	reg.MustRegister(newModelCollector(m))
	xm, err := xds.NewMetrics(reg)
	if err != nil {
		return err
	}
	readySeconds := prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_istiod_ready_seconds", Help: "Seconds from process start to informers synced."})
	reg.MustRegister(readySeconds)

	watcher, err := kube.New(clients, m, kube.Config{Log: log.With("component", "kube"), CheckCRDs: true})
	if err != nil {
		return fmt.Errorf("informers: %w", err)
	}
	// Waypoint L7 config (routes, L7 policies, traffic policies), served
	// beside the model's types.
	l7rep := l7.NewKubeReporter(clients.Kube, clients.Gateway, log.With("component", "l7"))
	l7c := l7.New(l7.Config{DomainSuffix: cfg.DomainSuffix, TrustDomain: cfg.TrustDomain}, log.With("component", "l7"), l7rep)
	if err := watcher.WatchL7(clients, l7c, true); err != nil {
		return fmt.Errorf("l7 informers: %w", err)
	}

	var xdsAuthn xds.Authenticator
	var authority *ca.Server
	if cfg.XDSAddr != "" {
		authority, err = ca.New(ctx, ca.Config{Namespace: cfg.Namespace, TrustDomain: cfg.TrustDomain, ClusterID: cfg.ClusterID,
			Pods: caPods{watcher.Pods()}, Registerer: reg, Logger: log.With("component", "ca")}, clients.Kube)
		if err != nil {
			return fmt.Errorf("ca: %w", err)
		}
		xdsAuthn = newXDSAuth(clients.Kube, ca.DefaultAudience, cfg.PlaintextAddr != "")
	}
	src := xds.NewMux().Handle(m, xds.Types...).Handle(l7c, l7.Types...)
	srv := xds.New(src, xds.Config{Debounce: cfg.Debounce, MaxDebounce: cfg.MaxDebounce, Log: log.With("component", "xds"), Metrics: xm, Auth: xdsAuthn, Types: src.Types()})
	srv.OnFullPushesDone(returnMemory)

	var ready atomic.Bool
	isReady := func() bool {
		if !ready.Load() && watcher.HasSynced() && (authority == nil || authority.Ready()) {
			ready.Store(true)
		}
		return ready.Load()
	}

	g, gctx := errgroup.WithContext(ctx)
	type server struct {
		name  string
		serve func(net.Listener) error
		stop  func(context.Context)
		addr  string
	}
	var servers []server

	if cfg.XDSAddr != "" {
		gs := grpc.NewServer(append(xds.ServerOptions(), grpc.Creds(credentials.NewTLS(authority.ServerTLSConfig())))...)
		srv.Register(gs)
		authority.Register(gs)
		servers = append(servers, server{"xds+ca (tls)", gs.Serve, grpcStop(gs), cfg.XDSAddr})
	}
	if cfg.PlaintextAddr != "" {
		gp := grpc.NewServer(xds.ServerOptions()...)
		srv.Register(gp) // one server, two listeners: one model view, one set of metrics
		servers = append(servers, server{"xds (plaintext)", gp.Serve, grpcStop(gp), cfg.PlaintextAddr})
		log.Warn("plaintext xDS enabled without authentication; for tests only", "addr", cfg.PlaintextAddr)
	}
	mon := &http.Server{Handler: monitoringMux(reg, isReady), ReadHeaderTimeout: 10 * time.Second}
	servers = append(servers, server{"monitoring", mon.Serve, httpStop(mon), cfg.MonitoringAddr})
	if cfg.DebugAddr != "" {
		dbg := &http.Server{Handler: debugMux(m, src, src.Types(), srv), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, server{"debug", dbg.Serve, httpStop(dbg), cfg.DebugAddr})
	}

	// Open every listener first so a bad address fails fast.
	var lc net.ListenConfig
	listeners := make([]net.Listener, len(servers))
	for i, s := range servers {
		l, err := lc.Listen(ctx, "tcp", s.addr)
		if err != nil {
			for _, o := range listeners[:i] {
				_ = o.Close() // unused; the listen error is what matters
			}
			return fmt.Errorf("listen %s on %s: %w", s.name, s.addr, err)
		}
		listeners[i] = l
		log.Info("listening", "server", s.name, "addr", l.Addr().String())
	}

	g.Go(func() error { return l7rep.Run(gctx) })
	g.Go(func() error { return watcher.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	if authority != nil {
		g.Go(func() error { return authority.Run(gctx) })
	}
	if clients.Gateway != nil {
		// Created here, not by the install: the install applies the
		// Gateway API CRDs, and a GatewayClass in the same apply fails.
		g.Go(func() error {
			return gatewayclass.Run(gctx, clients.Gateway.GatewayV1(), gatewayclass.Config{Log: log.With("component", "gatewayclass")})
		})
		if inf := watcher.GatewayInformer(); inf != nil {
			wp, err := waypoint.New(clients.Kube, clients.Gateway.GatewayV1(), inf, waypoint.Config{
				Image: cfg.WaypointImage, PodNamespace: cfg.Namespace, PodName: cfg.PodName,
				XDSAddress: "istiod." + cfg.Namespace + ".svc:15012", ClusterID: cfg.ClusterID, TrustDomain: cfg.TrustDomain,
				DomainSuffix: cfg.DomainSuffix, Network: cfg.Network, Log: log.With("component", "waypoint"),
			})
			if err != nil {
				return err
			}
			g.Go(func() error { return wp.Run(gctx) })
		}
	}
	g.Go(func() error {
		select {
		case <-gctx.Done():
		case at := <-watcher.SyncedAt():
			readySeconds.Set(at.Sub(start).Seconds())
			log.Info("ready", "after", at.Sub(start), "sizes", m.Sizes())
			settleGC(cfg)
		}
		return nil
	})
	for i, s := range servers {
		l := listeners[i]
		g.Go(func() error {
			if err := s.serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) && gctx.Err() == nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
		defer cancel()
		for _, s := range servers {
			s.stop(sctx)
		}
		return nil
	})
	return g.Wait()
}

// grpcStop drains streams until the deadline, then closes them.
func grpcStop(gs *grpc.Server) func(context.Context) {
	return func(ctx context.Context) {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			gs.Stop()
			<-done
		}
	}
}

func httpStop(s *http.Server) func(context.Context) {
	return func(ctx context.Context) {
		if err := s.Shutdown(ctx); err != nil {
			_ = s.Close() // out of time: drop what is left
		}
	}
}
