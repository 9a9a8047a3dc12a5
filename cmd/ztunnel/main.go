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
	"os"
	"os/signal"
	"syscall"

	"github.com/weftmesh/weft/pkg/envflag"
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

func parse(args []string) (node.Config, error) {
	cfg := node.Defaults()
	fs := flag.NewFlagSet("ztunnel", flag.ContinueOnError)
	e := envflag.New(fs)
	e.String(&cfg.XDSAddress, "xds-address", "XDS_ADDRESS", "istiod delta xDS address")
	e.Bool(&cfg.XDSPlaintext, "xds-plaintext", "XDS_PLAINTEXT", "connect to xDS without TLS")
	e.String(&cfg.CAAddress, "ca-address", "CA_ADDRESS", "istiod CA address")
	e.String(&cfg.RootCertFile, "root-cert", "ROOT_CERT", "PEM root certificate that verifies istiod")
	e.String(&cfg.TokenFile, "token-file", "TOKEN_FILE", "projected service-account token (audience istio-ca)")
	e.String(&cfg.ClusterID, "cluster-id", "CLUSTER_ID", "cluster id")
	e.String(&cfg.TrustDomain, "trust-domain", "TRUST_DOMAIN", "mesh trust domain")
	e.String(&cfg.Network, "network", "NETWORK", "network of this node")
	e.String(&cfg.NodeName, "node-name", "NODE_NAME", "Kubernetes node name")
	e.String(&cfg.PodName, "pod-name", "POD_NAME", "this ztunnel's pod name")
	e.String(&cfg.PodNamespace, "pod-namespace", "POD_NAMESPACE", "this ztunnel's namespace")
	e.Text(&cfg.InstanceIP, "instance-ip", "INSTANCE_IP", "this ztunnel's pod IP", "an IP address")
	e.String(&cfg.ZDSSocket, "zds-socket", "ZDS_SOCKET", "node agent ZDS socket")
	e.String(&cfg.AdminAddr, "admin-address", "ADMIN_ADDRESS", "admin listen address (localhost only)")
	e.String(&cfg.MetricsAddr, "metrics-address", "METRICS_ADDRESS", "metrics listen address")
	e.String(&cfg.ReadinessAddr, "readiness-address", "READINESS_ADDRESS", "readiness listen address")
	e.Duration(&cfg.DrainTimeout, "drain-timeout", "DRAIN_TIMEOUT", "graceful drain bound")
	e.Duration(&cfg.ConnectTimeout, "connect-timeout", "CONNECT_TIMEOUT", "upstream connect timeout")
	e.Duration(&cfg.OnDemandTimeout, "on-demand-timeout", "ON_DEMAND_TIMEOUT", "wait this long for the control plane to describe an unknown destination; 0 disables")
	e.Bool(&cfg.PreserveSource, "preserve-source", "PRESERVE_SOURCE", "connect to apps from the client's address")
	e.Bool(&cfg.QUIC, "hbone-quic", "HBONE_QUIC", "serve HBONE over QUIC on each pod's UDP 15008 and use it towards workloads that advertise it")
	e.Int(&cfg.MaxConnsPerPod, "max-connections-per-pod", "MAX_CONNECTIONS_PER_POD", "cap on each pod's concurrent proxied connections per direction; more are refused")
	e.Int(&cfg.MaxConnsPerNode, "max-connections-per-node", "MAX_CONNECTIONS_PER_NODE", "cap on the concurrent proxied connections of all pods; more are refused")
	e.Duration(&cfg.UDPIdleTimeout, "udp-idle-timeout", "UDP_IDLE_TIMEOUT", "end an enrolled pod's UDP flow after this long without traffic")
	e.Int(&cfg.UDPMaxFlowsPerPod, "udp-max-flows-per-pod", "UDP_MAX_FLOWS_PER_POD", "cap on each pod's UDP flows; datagrams opening more are dropped")
	e.Duration(&cfg.ReleasePagesAfter, "release-pages-after", "RELEASE_PAGES_AFTER", "drop the mappings of the executable's pages this long after readiness and after the last pod enrollment, so code that only start-up and enrollment run does not stay resident; 0 disables")
	var lf weftlog.Flags
	lf.Register(fs)
	if err := e.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Log = lf.Options()
	return cfg, cfg.Validate()
}
