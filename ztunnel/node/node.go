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
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weftmesh/weft/pkg/admin"
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
		Types:   []string{xds.AddressType, xds.AuthorizationType},
		Handler: countingHandler{store, metrics},
		Log:     logs.Logger("xds"),
		DialOptions: []grpc.DialOption{grpc.WithPerRPCCredentials(tokenCreds{
			file: cfg.TokenFile, clusterID: cfg.ClusterID, secure: !cfg.XDSPlaintext})},
	})
	store.SetSubscriber(xdsClient)

	tcfg := tunnel.Config{Certs: certs, TrustDomain: cfg.TrustDomain, Log: logs.Logger("hbone")}
	tunnels, err := tunnel.NewClient(tcfg)
	if err != nil {
		return err
	}
	defer func() { _ = tunnels.Close() }()
	inbound, err := tunnel.NewServer(tcfg)
	if err != nil {
		return err
	}
	inbound.DrainTimeout = cfg.DrainTimeout
	px, err := proxy.New(proxy.Config{
		Store: store, Certs: certs, Tunnels: tunnels, Inbound: inbound, Recorder: rec,
		TrustDomain: cfg.TrustDomain, ClusterID: cfg.ClusterID, Network: cfg.Network,
		ConnectTimeout: cfg.ConnectTimeout, PreserveSource: cfg.PreserveSource, OnDemandTimeout: cfg.OnDemandTimeout,
		Log: logs.Logger("proxy"),
	})
	if err != nil {
		return err
	}
	pods := inpod.NewManager(inpod.ManagerConfig{Handler: px, DrainTimeout: cfg.DrainTimeout, Log: logs.Logger("inpod")})
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
		"xds":           func() any { return xdsClient.Status() },
		"config":        func() any { return redacted(cfg) },
	}})

	servers := []*httpServer{
		{name: "admin", addr: cfg.AdminAddr, h: adminHandler},
		{name: "metrics", addr: cfg.MetricsAddr, h: admin.Metrics(metrics.Registry)},
		{name: "readiness", addr: cfg.ReadinessAddr, h: admin.Readiness(ready)},
	}
	for _, s := range servers {
		if err := s.listen(); err != nil {
			for _, o := range servers {
				o.close()
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
		spawn(s.name+" server", s.serve)
	}
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
		s.shutdown(drainCtx)
	}
	wg.Wait()
	lg.Info("ztunnel stopped")
	return runErr
}

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

// tokenCreds sends the projected token (re-read on every call, so rotation
// is picked up) and the cluster id with every xDS request.
type tokenCreds struct {
	file, clusterID string
	secure          bool
}

func (c tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	b, err := os.ReadFile(c.file)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	md := map[string]string{"authorization": "Bearer " + strings.TrimSpace(string(b))}
	if c.clusterID != "" {
		md["clusterid"] = c.clusterID
	}
	return md, nil
}

func (c tokenCreds) RequireTransportSecurity() bool { return c.secure }

// redacted is the configuration as /config_dump shows it.
func redacted(cfg Config) map[string]any {
	return map[string]any{
		"xdsAddress": cfg.XDSAddress, "caAddress": cfg.CAAddress, "clusterId": cfg.ClusterID,
		"trustDomain": cfg.TrustDomain, "network": cfg.Network, "nodeName": cfg.NodeName,
		"zdsSocket": cfg.ZDSSocket, "drainTimeout": cfg.DrainTimeout.String(),
		"connectTimeout": cfg.ConnectTimeout.String(), "preserveSource": cfg.PreserveSource,
		"onDemandTimeout": cfg.OnDemandTimeout.String(),
	}
}

// httpServer is one of ztunnel's HTTP endpoints.
type httpServer struct {
	name, addr string
	h          http.Handler
	ln         net.Listener
	srv        *http.Server
}

func (s *httpServer) listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s server: %w", s.name, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.h, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

func (s *httpServer) serve() error { return s.srv.Serve(s.ln) }

func (s *httpServer) close() {
	if s.ln != nil {
		_ = s.ln.Close()
	}
}

func (s *httpServer) shutdown(ctx context.Context) {
	if s.srv != nil {
		_ = s.srv.Shutdown(ctx)
	}
}
