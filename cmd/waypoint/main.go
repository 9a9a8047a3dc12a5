// Command waypoint is Weft's per-namespace L7 proxy: it receives HBONE
// tunnels from ztunnels for the Services and workloads bound to its Gateway,
// applies L7 policy, routing and resilience, and forwards over HBONE.
//
// Every flag can also be set through the environment variable shown in its
// help (flags win); a malformed variable is an error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/weftmesh/weft/pkg/envflag"
	weftlog "github.com/weftmesh/weft/pkg/log"
	"github.com/weftmesh/weft/waypoint/server"
)

func main() {
	cfg, err := parse(os.Args[1:], os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "waypoint:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "waypoint:", err)
		os.Exit(1)
	}
}

func parse(args []string, lookup func(string) (string, bool)) (server.Config, error) {
	cfg := server.Defaults()
	fs := flag.NewFlagSet("waypoint", flag.ContinueOnError)
	e := envflag.NewLookup(fs, lookup)
	e.String(&cfg.XDSAddress, "xds-address", "XDS_ADDRESS", "istiod-lite delta xDS address")
	e.Bool(&cfg.XDSPlaintext, "xds-plaintext", "XDS_PLAINTEXT", "connect to xDS without TLS")
	e.String(&cfg.CAAddress, "ca-address", "CA_ADDRESS", "istiod-lite CA address")
	e.String(&cfg.RootCertFile, "root-cert", "ROOT_CERT", "PEM root certificate that verifies istiod-lite")
	e.String(&cfg.TokenFile, "token-file", "TOKEN_FILE", "projected service-account token (audience istio-ca)")
	e.String(&cfg.ClusterID, "cluster-id", "CLUSTER_ID", "cluster id")
	e.String(&cfg.TrustDomain, "trust-domain", "TRUST_DOMAIN", "mesh trust domain")
	e.String(&cfg.DomainSuffix, "domain-suffix", "DOMAIN_SUFFIX", "cluster DNS domain")
	e.String(&cfg.Network, "network", "NETWORK", "network of this waypoint")
	e.String(&cfg.PodName, "pod-name", "POD_NAME", "this waypoint's pod name")
	e.String(&cfg.PodNamespace, "pod-namespace", "POD_NAMESPACE", "this waypoint's namespace (the Gateway's)")
	e.Text(&cfg.PodIP, "pod-ip", "POD_IP", "this waypoint's pod IP", "an IP address")
	e.String(&cfg.NodeName, "node-name", "NODE_NAME", "Kubernetes node name")
	e.String(&cfg.ServiceAccount, "service-account", "SERVICE_ACCOUNT", "service account: the waypoint's identity")
	e.String(&cfg.GatewayName, "gateway-name", "GATEWAY_NAME", "the waypoint's Gateway name")
	e.String(&cfg.HBONEAddr, "hbone-address", "HBONE_ADDRESS", "HBONE listen address")
	e.String(&cfg.AdminAddr, "admin-address", "ADMIN_ADDRESS", "admin listen address (localhost only)")
	e.String(&cfg.MetricsAddr, "metrics-address", "METRICS_ADDRESS", "metrics listen address")
	e.String(&cfg.ReadinessAddr, "readiness-address", "READINESS_ADDRESS", "readiness listen address")
	e.Duration(&cfg.DrainTimeout, "drain-timeout", "DRAIN_TIMEOUT", "graceful drain bound")
	e.Duration(&cfg.ConnectTimeout, "connect-timeout", "CONNECT_TIMEOUT", "upstream connect timeout")
	e.Duration(&cfg.SniffTimeout, "sniff-timeout", "SNIFF_TIMEOUT", "wait this long for a client's first bytes on an undeclared port before treating it as TCP")
	e.String(&cfg.OTLPEndpoint, "otlp-endpoint", "OTLP_ENDPOINT", "export request spans to this OTLP/gRPC collector (host:port); empty: off")
	e.Bool(&cfg.OTLPInsecure, "otlp-insecure", "OTLP_INSECURE", "send spans to the collector without TLS")
	e.Bool(&cfg.AccessLog, "access-log", "ACCESS_LOG", "write a JSON access-log record per request and TCP connection")
	e.Duration(&cfg.ReleasePagesAfter, "release-pages-after", "RELEASE_PAGES_AFTER", "drop the mappings of the executable's pages this long after readiness and after the last L7 configuration change, so code that only start-up and configuration run does not stay resident; 0 disables")
	var lf weftlog.Flags
	lf.Register(fs)
	if err := e.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Log = lf.Options()
	return cfg, cfg.Validate()
}
