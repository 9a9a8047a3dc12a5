// Command ztunnel is Weft's node proxy: one per node, carrying every
// enrolled pod's TCP traffic over HBONE with the pod's own identity.
//
// Every flag can also be set through the environment variable shown in its
// help (flags win).
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	weftlog "github.com/weftmesh/weft/pkg/log"
	"github.com/weftmesh/weft/ztunnel/node"
)

func main() {
	cfg, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ztunnel:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := node.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "ztunnel:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	if b, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return b
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

func parse(args []string) (node.Config, error) {
	cfg := node.Defaults()
	fs := flag.NewFlagSet("ztunnel", flag.ContinueOnError)
	str := func(p *string, name, envName, help string) {
		fs.StringVar(p, name, env(envName, *p), help+" ($"+envName+")")
	}
	str(&cfg.XDSAddress, "xds-address", "XDS_ADDRESS", "istiod delta xDS address")
	fs.BoolVar(&cfg.XDSPlaintext, "xds-plaintext", envBool("XDS_PLAINTEXT", false), "connect to xDS without TLS ($XDS_PLAINTEXT)")
	str(&cfg.CAAddress, "ca-address", "CA_ADDRESS", "istiod CA address")
	str(&cfg.RootCertFile, "root-cert", "ROOT_CERT", "PEM root certificate that verifies istiod")
	str(&cfg.TokenFile, "token-file", "TOKEN_FILE", "projected service-account token (audience istio-ca)")
	str(&cfg.ClusterID, "cluster-id", "CLUSTER_ID", "cluster id")
	str(&cfg.TrustDomain, "trust-domain", "TRUST_DOMAIN", "mesh trust domain")
	str(&cfg.Network, "network", "NETWORK", "network of this node")
	str(&cfg.NodeName, "node-name", "NODE_NAME", "Kubernetes node name")
	str(&cfg.PodName, "pod-name", "POD_NAME", "this ztunnel's pod name")
	str(&cfg.PodNamespace, "pod-namespace", "POD_NAMESPACE", "this ztunnel's namespace")
	ip := env("INSTANCE_IP", "")
	fs.StringVar(&ip, "instance-ip", ip, "this ztunnel's pod IP ($INSTANCE_IP)")
	str(&cfg.ZDSSocket, "zds-socket", "ZDS_SOCKET", "node agent ZDS socket")
	str(&cfg.AdminAddr, "admin-address", "ADMIN_ADDRESS", "admin listen address (localhost only)")
	str(&cfg.MetricsAddr, "metrics-address", "METRICS_ADDRESS", "metrics listen address")
	str(&cfg.ReadinessAddr, "readiness-address", "READINESS_ADDRESS", "readiness listen address")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", envDuration("DRAIN_TIMEOUT", cfg.DrainTimeout), "graceful drain bound ($DRAIN_TIMEOUT)")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", envDuration("CONNECT_TIMEOUT", cfg.ConnectTimeout), "upstream connect timeout ($CONNECT_TIMEOUT)")
	fs.DurationVar(&cfg.OnDemandTimeout, "on-demand-timeout", envDuration("ON_DEMAND_TIMEOUT", cfg.OnDemandTimeout), "wait this long for the control plane to describe an unknown destination; 0 disables ($ON_DEMAND_TIMEOUT)")
	fs.BoolVar(&cfg.PreserveSource, "preserve-source", envBool("PRESERVE_SOURCE", cfg.PreserveSource), "connect to apps from the client's address ($PRESERVE_SOURCE)")
	var lf weftlog.Flags
	lf.Register(fs)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return cfg, fmt.Errorf("instance-ip %q: %w", ip, err)
		}
		cfg.InstanceIP = a
	}
	cfg.Log = lf.Options()
	return cfg, cfg.Validate()
}
