// Command istiod-lite is Weft's control plane: it watches Kubernetes,
// keeps the ambient model, serves it to ztunnels and waypoints over delta
// xDS, and signs workload certificates.
//
// Every flag can also be set through the environment variable shown in its
// help (flags win).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weftmesh/weft/istiod-lite/server"
	"github.com/weftmesh/weft/pkg/envflag"
	weftlog "github.com/weftmesh/weft/pkg/log"
)

func main() {
	cfg, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "istiod-lite:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "istiod-lite:", err)
		os.Exit(1)
	}
}

func parse(args []string) (server.Config, error) {
	cfg := server.Defaults()
	fs := flag.NewFlagSet("istiod-lite", flag.ContinueOnError)
	e := envflag.New(fs)
	e.String(&cfg.Kubeconfig, "kubeconfig", "KUBECONFIG", "kubeconfig path; empty means in-cluster")
	e.String(&cfg.XDSAddr, "xds-address", "XDS_ADDRESS", "xDS and CA over TLS listen address")
	e.String(&cfg.PlaintextAddr, "plaintext-xds-address", "PLAINTEXT_XDS_ADDRESS", "plaintext, unauthenticated xDS listen address, e.g. :15010 (tests only; empty disables)")
	e.String(&cfg.MonitoringAddr, "monitoring-address", "MONITORING_ADDRESS", "/ready, /healthz and /metrics listen address")
	e.String(&cfg.DebugAddr, "debug-address", "DEBUG_ADDRESS", "loopback-only /debug/model and /debug/clients address (empty disables)")
	e.String(&cfg.Namespace, "namespace", "POD_NAMESPACE", "istiod-lite's namespace")
	e.String(&cfg.PodName, "pod-name", "POD_NAME", "istiod-lite's own pod, whose image tag the waypoint image takes")
	e.String(&cfg.WaypointImage, "waypoint-image", "WAYPOINT_IMAGE", "waypoint proxy image (default: weft/waypoint beside istiod-lite's own image, same tag)")
	e.String(&cfg.RootNamespace, "root-namespace", "ROOT_NAMESPACE", "namespace of mesh-wide policies (default: --namespace)")
	e.String(&cfg.TrustDomain, "trust-domain", "TRUST_DOMAIN", "mesh trust domain")
	e.String(&cfg.ClusterID, "cluster-id", "CLUSTER_ID", "cluster id used in workload uids")
	e.String(&cfg.Network, "network", "NETWORK", "network of this cluster's addresses")
	e.String(&cfg.DomainSuffix, "domain-suffix", "DOMAIN_SUFFIX", "cluster DNS domain")
	e.Bool(&cfg.RequireRedirection, "require-redirection", "REQUIRE_REDIRECTION", "give enrolled pods HBONE only once the node agent annotated them")
	e.Bool(&cfg.HBONEQUIC, "hbone-quic", "HBONE_QUIC", "advertise HBONE over QUIC for every namespace not labelled weft.dev/hbone-transport=h2 (else only for those labelled =quic)")
	e.Duration(&cfg.Debounce, "push-debounce", "PUSH_DEBOUNCE", "quiet period before an xDS push")
	e.Duration(&cfg.MaxDebounce, "push-max-delay", "PUSH_MAX_DELAY", "longest delay of an xDS push under constant change")
	e.Duration(&cfg.ShutdownGrace, "shutdown-grace", "SHUTDOWN_GRACE", "graceful shutdown limit")
	e.Float32(&cfg.KubeQPS, "kube-qps", "KUBE_QPS", "API client queries per second")
	e.Int(&cfg.KubeBurst, "kube-burst", "KUBE_BURST", "API client burst")
	e.Int(&cfg.GCPercent, "gc-percent", "GC_PERCENT", "garbage collection target when GOGC is unset (0: Go's default)")
	e.Var((*memoryLimit)(&cfg.MemoryLimit), "memory-limit", "MEMORY_LIMIT",
		"soft memory limit when GOMEMLIMIT is unset: auto (90% of the container's limit, none without one), off, or a size such as 200Mi",
		"auto, off or a size such as 200Mi")
	var lf weftlog.Flags
	lf.Register(fs)
	if err := e.Parse(args); err != nil {
		return cfg, err
	}
	opts := lf.Options()
	opts.Output = os.Stderr
	root, err := weftlog.New(opts)
	if err != nil {
		return cfg, err
	}
	cfg.Log = root.Logger("istiod-lite")
	return cfg, cfg.Validate()
}

// memoryLimit is the --memory-limit flag value.
type memoryLimit int64

func (m *memoryLimit) String() string { return server.FormatMemoryLimit(int64(*m)) }

func (m *memoryLimit) Set(s string) error {
	v, err := server.ParseMemoryLimit(s)
	if err != nil {
		return err
	}
	*m = memoryLimit(v)
	return nil
}
