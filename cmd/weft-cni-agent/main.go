// Command weft-cni-agent runs on every node (DaemonSet, host network,
// privileged):
//
//	weft-cni-agent install   [flags]  copy weft-cni, insert it into the primary conflist, keep it there
//	weft-cni-agent uninstall [flags]  remove weft-cni from the conflists and the bin dir
//	weft-cni-agent agent     [flags]  the node agent: enroll pods, serve ZDS to ztunnel
//
// See packages cni/install and cni/nodeagent.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftmesh/weft/cni/agentapi"
	"github.com/weftmesh/weft/cni/install"
	"github.com/weftmesh/weft/cni/nodeagent"
	weftlog "github.com/weftmesh/weft/pkg/log"
	"github.com/weftmesh/weft/pkg/version"
)

const usage = "usage: weft-cni-agent install|uninstall|agent|version [flags] (-h for flags)"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "weft-cni-agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "install":
		return runInstall(ctx, args[1:], false)
	case "uninstall":
		return runInstall(ctx, args[1:], true)
	case "agent":
		return runAgent(ctx, args[1:])
	case "version":
		fmt.Println(version.String())
		return nil
	}
	return fmt.Errorf("unknown command %q; %s", args[0], usage)
}

func newLogger(lf weftlog.Flags, component string) (*slog.Logger, error) {
	opts := lf.Options()
	opts.Output = os.Stderr
	root, err := weftlog.New(opts)
	if err != nil {
		return nil, err
	}
	return root.Logger(component), nil
}

func runInstall(ctx context.Context, args []string, uninstall bool) error {
	fs := flag.NewFlagSet("weft-cni-agent install", flag.ContinueOnError)
	var cfg install.Config
	var lf weftlog.Flags
	var once, cleanup bool
	fs.StringVar(&cfg.PluginBinary, "plugin-binary", "/opt/weft/bin/weft-cni", "weft-cni binary to copy")
	fs.StringVar(&cfg.BinDir, "cni-bin-dir", "/opt/cni/bin", "node's CNI bin dir (hostPath)")
	fs.StringVar(&cfg.ConfDir, "cni-conf-dir", "/etc/cni/net.d", "node's CNI conf dir (hostPath)")
	fs.StringVar(&cfg.ConfFile, "cni-conf-file", "", "primary conflist file name (default: the runtime's choice)")
	fs.StringVar(&cfg.Settings.AgentSocket, "agent-socket", agentapi.DefaultSocket, "node agent socket the plugin calls")
	fs.StringVar(&cfg.Settings.EnrollmentFile, "enrollment-file", agentapi.DefaultEnrollmentFile, "enrollment file the plugin reads when the agent is down")
	fs.StringVar(&cfg.Settings.LogFile, "plugin-log-file", "/var/log/weft-cni.log", "plugin log file on the node")
	fs.StringVar(&cfg.Settings.LogLevel, "plugin-log-level", "info", "plugin log level")
	fs.StringVar(&cfg.Settings.AddTimeout, "plugin-add-timeout", "30s", "how long the plugin waits for the agent on ADD")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", time.Second, "how often to check the conf dir")
	fs.BoolVar(&once, "once", false, "install and exit instead of watching")
	fs.BoolVar(&cleanup, "uninstall-on-exit", true, "remove weft-cni when stopped (a stopped agent must not leave pods waiting on it)")
	lf.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := time.ParseDuration(cfg.Settings.AddTimeout); err != nil {
		return fmt.Errorf("--plugin-add-timeout: %w", err)
	}
	log, err := newLogger(lf, "cni-install")
	if err != nil {
		return err
	}
	inst, err := install.New(cfg, log)
	if err != nil {
		return err
	}
	if uninstall {
		return inst.Uninstall()
	}
	if once {
		_, err := inst.Install()
		return err
	}
	runErr := inst.Run(ctx, nil)
	if cleanup {
		if err := inst.Uninstall(); err != nil {
			return errors.Join(runErr, err)
		}
	}
	return runErr
}

func runAgent(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("weft-cni-agent agent", flag.ContinueOnError)
	var cfg nodeagent.Config
	var lf weftlog.Flags
	var kubeconfig string
	fs.StringVar(&cfg.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	fs.StringVar(&cfg.ZDSSocket, "zds-socket", nodeagent.DefaultZDSSocket, "ZDS socket ztunnel connects to")
	fs.StringVar(&cfg.CNISocket, "cni-socket", agentapi.DefaultSocket, "socket the CNI plugin calls")
	fs.StringVar(&cfg.EnrollmentFile, "enrollment-file", agentapi.DefaultEnrollmentFile, "where to record enrolled namespaces for the plugin")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", ":15014", "address for /healthz, /readyz and /metrics (empty disables)")
	fs.StringVar(&cfg.AdminAddr, "admin-addr", nodeagent.DefaultAdminAddr, "localhost address for the debug endpoints (GET /debug/pods: held pods with a live rule check; empty disables)")
	fs.DurationVar(&cfg.RuleCheckInterval, "rule-check-interval", nodeagent.DefaultRuleCheckInterval, "how often each held pod's redirect rules are checked and re-applied if they drifted")
	fs.BoolVar(&cfg.IPv6, "ipv6", false, "also install the IPv6 capture (ip6tables) in enrolled pods, for dual-stack clusters")
	fs.BoolVar(&cfg.RedirectDNS, "redirect-dns", false, "capture pods' DNS to ztunnel's DNS proxy (15053)")
	fs.BoolVar(&cfg.CaptureUDP, "capture-udp", false, "capture pods' outbound UDP (IPv4, except DNS) to ztunnel, which carries it over CONNECT-UDP (needs the QUIC transport; see docs/udp.md)")
	fs.StringVar(&cfg.IPTablesMode, "iptables-mode", "auto", "nft, legacy or auto (what the node uses)")
	fs.DurationVar(&cfg.AddTimeout, "add-timeout", 25*time.Second, "how long a CNI ADD waits for rules and ztunnel's ack")
	fs.DurationVar(&cfg.ResyncInterval, "resync", time.Minute, "full reconcile interval")
	fs.StringVar(&kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig (default: in-cluster)")
	lf.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log, err := newLogger(lf, "cni-agent")
	if err != nil {
		return err
	}
	rc, err := restConfig(kubeconfig)
	if err != nil {
		return err
	}
	rc.UserAgent = "weft-cni-agent/" + version.String()
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kube client: %w", err)
	}
	agent, err := nodeagent.New(ctx, cfg, kube, log)
	if err != nil {
		return err
	}
	return agent.Run(ctx)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster kube config (pass --kubeconfig outside a cluster): %w", err)
		}
		return rc, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	return rc, nil
}
