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
	"strconv"
	"syscall"
	"time"

	"github.com/weftmesh/weft/istiod-lite/server"
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

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func parse(args []string) (server.Config, error) {
	cfg := server.Defaults()
	fs := flag.NewFlagSet("istiod-lite", flag.ContinueOnError)
	str := func(p *string, name, envName, help string) {
		fs.StringVar(p, name, env(envName, *p), help+" ($"+envName+")")
	}
	str(&cfg.Kubeconfig, "kubeconfig", "KUBECONFIG", "kubeconfig path; empty means in-cluster")
	str(&cfg.XDSAddr, "xds-address", "XDS_ADDRESS", "xDS and CA over TLS listen address")
	str(&cfg.PlaintextAddr, "plaintext-xds-address", "PLAINTEXT_XDS_ADDRESS", "plaintext, unauthenticated xDS listen address, e.g. :15010 (tests only; empty disables)")
	str(&cfg.MonitoringAddr, "monitoring-address", "MONITORING_ADDRESS", "/ready, /healthz and /metrics listen address")
	str(&cfg.DebugAddr, "debug-address", "DEBUG_ADDRESS", "loopback-only /debug/model and /debug/clients address (empty disables)")
	str(&cfg.Namespace, "namespace", "POD_NAMESPACE", "istiod-lite's namespace")
	str(&cfg.RootNamespace, "root-namespace", "ROOT_NAMESPACE", "namespace of mesh-wide policies (default: --namespace)")
	str(&cfg.TrustDomain, "trust-domain", "TRUST_DOMAIN", "mesh trust domain")
	str(&cfg.ClusterID, "cluster-id", "CLUSTER_ID", "cluster id used in workload uids")
	str(&cfg.Network, "network", "NETWORK", "network of this cluster's addresses")
	str(&cfg.DomainSuffix, "domain-suffix", "DOMAIN_SUFFIX", "cluster DNS domain")
	reqRedir := strconv.FormatBool(cfg.RequireRedirection)
	str(&reqRedir, "require-redirection", "REQUIRE_REDIRECTION", "give enrolled pods HBONE only once the node agent annotated them")
	debounce, maxDebounce, grace := cfg.Debounce.String(), cfg.MaxDebounce.String(), cfg.ShutdownGrace.String()
	str(&debounce, "push-debounce", "PUSH_DEBOUNCE", "quiet period before an xDS push")
	str(&maxDebounce, "push-max-delay", "PUSH_MAX_DELAY", "longest delay of an xDS push under constant change")
	str(&grace, "shutdown-grace", "SHUTDOWN_GRACE", "graceful shutdown limit")
	qps := strconv.FormatFloat(float64(cfg.KubeQPS), 'f', -1, 32)
	str(&qps, "kube-qps", "KUBE_QPS", "API client queries per second")
	fs.IntVar(&cfg.KubeBurst, "kube-burst", cfg.KubeBurst, "API client burst")
	fs.IntVar(&cfg.GCPercent, "gc-percent", cfg.GCPercent, "garbage collection target when GOGC is unset (0: Go's default)")
	var lf weftlog.Flags
	lf.Register(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.RequireRedirection, err = strconv.ParseBool(reqRedir); err != nil {
		return cfg, fmt.Errorf("--require-redirection: %w", err)
	}
	for _, d := range []struct {
		p    *time.Duration
		s, n string
	}{{&cfg.Debounce, debounce, "push-debounce"}, {&cfg.MaxDebounce, maxDebounce, "push-max-delay"}, {&cfg.ShutdownGrace, grace, "shutdown-grace"}} {
		if *d.p, err = time.ParseDuration(d.s); err != nil {
			return cfg, fmt.Errorf("--%s: %w", d.n, err)
		}
	}
	q, err := strconv.ParseFloat(qps, 32)
	if err != nil {
		return cfg, fmt.Errorf("--kube-qps: %w", err)
	}
	cfg.KubeQPS = float32(q)
	root, err := weftlog.New(lf.Options())
	if err != nil {
		return cfg, err
	}
	cfg.Log = root.Logger("istiod-lite")
	return cfg, cfg.Validate()
}
