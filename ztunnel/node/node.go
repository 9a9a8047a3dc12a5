package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weftmesh/weft/pkg/admin"
	"github.com/weftmesh/weft/pkg/exepages"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/caclient"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
	"github.com/weftmesh/weft/pkg/log"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/pkg/xds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/proxy"
	"github.com/weftmesh/weft/ztunnel/telemetry"
	"github.com/weftmesh/weft/ztunnel/tunnel"
	"github.com/weftmesh/weft/ztunnel/udp"
)

// Run runs ztunnel until ctx ends, then drains: the ZDS session stops, every
// pod's listeners close (a replacement ztunnel's SO_REUSEPORT listeners
// keep accepting) and open connections get DrainTimeout to finish.
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
	lg := logs.Logger("ztunnel")

	roots, err := readRoots(cfg.RootCertFile)
	if err != nil {
		return err
	}
	metrics := telemetry.NewMetrics()
	rec := telemetry.NewRecorder(metrics, logs.Logger("access"))
	store := wds.New(wds.Config{TrustDomain: cfg.TrustDomain, Network: cfg.Network, Log: logs.Logger("xds")})

	ca, err := caclient.New(caclient.Config{Address: cfg.CAAddress, RootCAs: roots, TokenFile: cfg.TokenFile,
		ClusterID: cfg.ClusterID, Impersonate: true})
	if err != nil {
		return err
	}
	defer func() { _ = ca.Close() }()
	certs, err := certmgr.New(certmgr.Config{Fetcher: ca, Logger: logs.Logger("cert")})
	if err != nil {
		return err
	}
	defer func() { _ = certs.Close() }()

	xdsClient := xds.NewClient(xds.Config{
		Address: cfg.XDSAddress, TLS: xdsTLS(cfg, roots), Node: nodeProto(cfg),
		Types:       []string{xds.AddressType, xds.AuthorizationType},
		Handler:     countingHandler{store, metrics},
		Log:         logs.Logger("xds"),
		DialOptions: []grpc.DialOption{grpc.WithPerRPCCredentials(xds.TokenCredentials{File: cfg.TokenFile, ClusterID: cfg.ClusterID, Secure: !cfg.XDSPlaintext})},
	})
	store.SetSubscriber(xdsClient)

	tmetrics, err := tunnel.NewMetrics(metrics.Registry)
	if err != nil {
		return err
	}
	tcfg := tunnel.Config{Certs: certs, TrustDomain: cfg.TrustDomain, QUIC: cfg.QUIC, Store: store, Network: cfg.Network,
		ClusterID: cfg.ClusterID, Metrics: tmetrics, Log: logs.Logger("hbone")}
	tunnels, err := tunnel.NewClient(tcfg)
	if err != nil {
		return err
	}
	defer func() { _ = tunnels.Close() }()
	// Enrolled pods' UDP rides CONNECT-UDP, so only with QUIC; without it
	// captured UDP finds no listener and the kernel drops it.
	var udpFlows *udp.Service
	if cfg.QUIC {
		udpFlows, err = udp.New(udp.Config{Store: store, Tunnels: tunnels, Network: cfg.Network, ClusterID: cfg.ClusterID,
			IdleTimeout: cfg.UDPIdleTimeout, MaxFlowsPerPod: cfg.UDPMaxFlowsPerPod, ConnectTimeout: cfg.ConnectTimeout,
			Metrics: udp.NewMetrics(metrics.Registry), Log: logs.Logger("udp")})
		if err != nil {
			return err
		}
		tcfg.HandleUDP = udpFlows.HandleUDP
	}
	inbound, err := tunnel.NewServer(tcfg)
	if err != nil {
		return err
	}
	inbound.DrainTimeout = cfg.DrainTimeout
	px, err := proxy.New(proxy.Config{
		Store: store, Certs: certs, Tunnels: tunnels, Inbound: inbound, Recorder: rec,
		TrustDomain: cfg.TrustDomain, ClusterID: cfg.ClusterID, Network: cfg.Network,
		ConnectTimeout: cfg.ConnectTimeout, PreserveSource: cfg.PreserveSource, OnDemandTimeout: cfg.OnDemandTimeout,
		MaxConnsPerPod: cfg.MaxConnsPerPod, MaxConnsPerNode: cfg.MaxConnsPerNode,
		Log: logs.Logger("proxy"),
	})
	if err != nil {
		return err
	}
	var handler inpod.Handler = px
	if udpFlows != nil {
		handler = udpFlows.Wrap(px)
	}
	// Code that only start-up and pod enrollment run need not stay mapped
	// (pkg/exepages).
	pages := exepages.NewReleaser(cfg.ReleasePagesAfter, exepages.Release, logs.Logger("ztunnel"))
	defer pages.Close()
	handler = enrollments{handler, pages}
	pods := inpod.NewManager(inpod.ManagerConfig{Handler: handler, DrainTimeout: cfg.DrainTimeout, QUIC: cfg.QUIC, Log: logs.Logger("inpod")})
	zdsClient := inpod.NewClient(inpod.ClientConfig{Path: cfg.ZDSSocket, Manager: pods, Log: logs.Logger("inpod")})

	ready := func() error {
		select {
		case <-pods.SnapshotDone():
		default:
			return errors.New("waiting for the node agent's workload snapshot")
		}
		select {
		case <-store.Synced():
		default:
			return errors.New("waiting for the first xds configuration")
		}
		return nil
	}
	adminHandler := admin.Handler(admin.Config{Name: "ztunnel", Levels: logs, Sections: map[string]admin.Dump{
		"workloads":     func() any { return store.Dump().Workloads },
		"services":      func() any { return store.Dump().Services },
		"policies":      func() any { return store.Dump().Policies },
		"certificates":  func() any { return certs.Snapshot() },
		"workloadState": func() any { return pods.States() },
		"connections":   func() any { return rec.Connections() },
		"udpFlows": func() any {
			if udpFlows == nil {
				return []udp.FlowInfo{}
			}
			return udpFlows.Flows()
		},
		"xds":    func() any { return xdsClient.Status() },
		"config": func() any { return redacted(cfg) },
	}})

	servers := []*admin.Server{
		{Name: "admin", Addr: cfg.AdminAddr, Handler: adminHandler},
		{Name: "metrics", Addr: cfg.MetricsAddr, Handler: admin.Metrics(metrics.Registry)},
		{Name: "readiness", Addr: cfg.ReadinessAddr, Handler: admin.Readiness(ready)},
	}
	for _, s := range servers {
		if err := s.Listen(); err != nil {
			for _, o := range servers {
				o.Close()
			}
			return err
		}
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
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
	spawn("zds", func() error { return zdsClient.Run(runCtx) })
	for _, s := range servers {
		spawn(s.Name+" server", s.Serve)
	}
	spawn("release start-up pages", func() error { pages.ReadyAfter(runCtx, pods.SnapshotDone(), store.Synced()); return nil })
	lg.Info("ztunnel started", "node", cfg.NodeName, "xds", cfg.XDSAddress, "zds", cfg.ZDSSocket)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errs:
		lg.Error("ztunnel component failed", "error", runErr)
	}

	// Drain: stop taking pods, close listeners, let connections finish.
	lg.Info("ztunnel draining", "timeout", cfg.DrainTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	pods.Close(drainCtx)
	stopRun()
	for _, s := range servers {
		s.Shutdown(drainCtx)
	}
	wg.Wait()
	lg.Info("ztunnel stopped")
	return runErr
}

// enrollments tells the page releaser of every pod the handler starts
// serving: enrolling a pod runs code the data path never does.
type enrollments struct {
	inpod.Handler
	pages *exepages.Releaser
}

func (h enrollments) ServePod(pod *inpod.Pod) {
	h.pages.Changed()
	h.Handler.ServePod(pod)
}

var _ inpod.Handler = enrollments{}

// countingHandler counts every xDS response and hands it to the store.
type countingHandler struct {
	store   *wds.Store
	metrics *telemetry.Metrics
}

func (h countingHandler) Apply(typeURL string, resources []*discoveryv3.Resource, removed []string) error {
	h.metrics.XDSMessage(typeURL)
	return h.store.Apply(typeURL, resources, removed)
}

var _ xds.Handler = countingHandler{}

func readRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read root certificate: %w", err)
	}
	certs, err := identity.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("root certificate %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func xdsTLS(cfg Config, roots *x509.CertPool) *tls.Config {
	if cfg.XDSPlaintext {
		return nil
	}
	host, _, _ := net.SplitHostPort(cfg.XDSAddress)
	return &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
}

// nodeProto identifies this ztunnel as Istio's does:
// ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local.
func nodeProto(cfg Config) *corev3.Node {
	ip := ""
	if cfg.InstanceIP.IsValid() {
		ip = cfg.InstanceIP.String()
	}
	id := fmt.Sprintf("ztunnel~%s~%s.%s~%s.svc.cluster.local", ip, cfg.PodName, cfg.PodNamespace, cfg.PodNamespace)
	md, _ := structpb.NewStruct(map[string]any{
		"NAME": cfg.PodName, "NAMESPACE": cfg.PodNamespace, "INSTANCE_IPS": ip, "NODE_NAME": cfg.NodeName,
		"CLUSTER_ID": cfg.ClusterID,
	})
	return &corev3.Node{Id: id, Metadata: md}
}

// redacted is the configuration as /config_dump shows it.
func redacted(cfg Config) map[string]any {
	return map[string]any{
		"xdsAddress": cfg.XDSAddress, "caAddress": cfg.CAAddress, "clusterId": cfg.ClusterID,
		"trustDomain": cfg.TrustDomain, "network": cfg.Network, "nodeName": cfg.NodeName,
		"zdsSocket": cfg.ZDSSocket, "drainTimeout": cfg.DrainTimeout.String(),
		"connectTimeout": cfg.ConnectTimeout.String(), "preserveSource": cfg.PreserveSource,
		"onDemandTimeout":      cfg.OnDemandTimeout.String(),
		"maxConnectionsPerPod": cfg.MaxConnsPerPod, "maxConnectionsPerNode": cfg.MaxConnsPerNode,
		"udpIdleTimeout": cfg.UDPIdleTimeout.String(), "udpMaxFlowsPerPod": cfg.UDPMaxFlowsPerPod,
		"releasePagesAfter": cfg.ReleasePagesAfter.String(),
	}
}
