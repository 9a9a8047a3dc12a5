package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"sort"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
)

// ztunnelTarget selects one ztunnel: a positional pod, --node, or a file.
type ztunnelTarget struct {
	node string
	file string
}

func (t *ztunnelTarget) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&t.node, "node", "", "read the ztunnel running on this node")
	cmd.Flags().StringVarP(&t.file, "file", "f", "", "read a saved /config_dump file instead of a live ztunnel")
}

// fetch returns the chosen ztunnel's parsed dump and pod (nil for a file).
func (t *ztunnelTarget) fetch(cmd *cobra.Command, g *globals, args []string) (*zdump.Dump, *corev1.Pod, error) {
	if t.file != "" {
		b, err := os.ReadFile(t.file)
		if err != nil {
			return nil, nil, fmt.Errorf("read config dump: %w", err)
		}
		d, err := zdump.Parse(b)
		return d, nil, err
	}
	pod := ""
	if len(args) > 0 {
		pod = args[0]
	}
	body, p, err := ztunnelGet(cmd, g, t.node, pod, "/config_dump")
	if err != nil {
		return nil, nil, err
	}
	d, err := zdump.Parse(body)
	if err != nil {
		return nil, nil, fmt.Errorf("ztunnel %s: %w", p.Name, err)
	}
	return d, p, nil
}

// ztunnelGet GETs path from the chosen ztunnel's admin port.
func ztunnelGet(cmd *cobra.Command, g *globals, node, pod, path string) ([]byte, *corev1.Pod, error) {
	c, err := g.clients()
	if err != nil {
		return nil, nil, err
	}
	p, err := kube.FindZtunnel(cmd.Context(), c.Kube, g.systemNS, node, pod)
	if err != nil {
		return nil, nil, err
	}
	body, err := g.env.PodHTTP(c).Get(cmd.Context(), p.Namespace, p.Name, kube.ZtunnelAdminPort, path)
	if err != nil {
		return nil, p, ztunnelSilent(p, err)
	}
	return body, p, nil
}

func ztunnelSilent(p *corev1.Pod, err error) error {
	return fmt.Errorf("ztunnel %s on node %s did not answer on its admin port %d: %w; is it running and ready? (`kubectl -n %s get pod %s`, `kubectl -n %s logs %s`)",
		p.Name, p.Spec.NodeName, kube.ZtunnelAdminPort, err, p.Namespace, p.Name, p.Namespace, p.Name)
}

func newZtunnelConfigCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ztunnel-config",
		Aliases: []string{"zc"},
		Short:   "Show what one ztunnel knows: workloads, services, policies, certificates, connections",
		Long: `Reads a ztunnel's /config_dump through a port-forward to its localhost admin
port (15000). Choose the ztunnel by pod name, or with --node; without either,
the first running ztunnel is used.`,
		Example: `  weftctl ztunnel-config workloads --node node-a
  weftctl ztunnel-config services --workload-namespace demo
  weftctl ztunnel-config policies ztunnel-x7k2p -o yaml
  weftctl ztunnel-config log --node node-a --level proxy:debug`,
	}
	type view struct {
		use     string
		aliases []string
		short   string
		example string
		render  func(d *zdump.Dump, f zdump.Filter) (printer.TableData, any)
	}
	views := []view{
		{"workloads", []string{"workload", "w"}, "List the workloads ztunnel knows (NAMESPACE POD NAME ADDRESS NODE WAYPOINT PROTOCOL)",
			"  weftctl ztunnel-config workloads --node node-a --workload-namespace demo\n  weftctl ztunnel-config workloads --address 10.244.1.6 -o json",
			func(d *zdump.Dump, f zdump.Filter) (printer.TableData, any) { return zdump.Workloads(d, f) }},
		{"services", []string{"service", "svc", "s"}, "List the services ztunnel knows (NAMESPACE SERVICE NAME SERVICE VIP WAYPOINT ENDPOINTS)",
			"  weftctl ztunnel-config services --node node-a\n  weftctl ztunnel-config services --address 10.96.0.20",
			func(d *zdump.Dump, f zdump.Filter) (printer.TableData, any) { return zdump.Services(d, f) }},
		{"policies", []string{"policy", "authorization", "p"}, "List the authorization policies ztunnel enforces (NAMESPACE POLICY NAME ACTION SCOPE)",
			"  weftctl ztunnel-config policies --node node-a\n  weftctl ztunnel-config policies --workload-namespace demo -o yaml",
			func(d *zdump.Dump, f zdump.Filter) (printer.TableData, any) { return zdump.Policies(d, f) }},
		{"certificates", []string{"certificate", "certs", "secret", "c"}, "List the certificates ztunnel holds per identity, with validity",
			"  weftctl ztunnel-config certificates --node node-a",
			func(d *zdump.Dump, f zdump.Filter) (printer.TableData, any) {
				return zdump.Certificates(d, g.env.Now())
			}},
		{"connections", []string{"connection", "conns"}, "List ztunnel's open connections (WORKLOAD DIRECTION LOCAL REMOTE REMOTE TARGET PROTOCOL TRANSPORT)",
			"  weftctl ztunnel-config connections --node node-a --workload-namespace demo",
			func(d *zdump.Dump, f zdump.Filter) (printer.TableData, any) { return zdump.Connections(d, f) }},
	}
	for _, v := range views {
		var t ztunnelTarget
		var f zdump.Filter
		sub := &cobra.Command{
			Use: v.use + " [ZTUNNEL-POD]", Aliases: v.aliases, Short: v.short, Example: v.example,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				d, _, err := t.fetch(cmd, g, args)
				if err != nil {
					return err
				}
				format, _ := g.format()
				tab, obj := v.render(d, f)
				return printer.Write(g.env.Out, format, tab, obj)
			},
		}
		t.bind(sub)
		sub.Flags().StringVar(&f.Namespace, "workload-namespace", "", "only entries of this namespace")
		sub.Flags().StringVar(&f.Address, "address", "", "only entries with this IP address")
		sub.Flags().StringVar(&f.Node, "workload-node", "", "workloads: only those scheduled on this node")
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(newZtunnelAllCmd(g, views[0].render, views[1].render, views[2].render, views[3].render, views[4].render), newZtunnelLogCmd(g))
	return cmd
}

func newZtunnelAllCmd(g *globals, renders ...func(*zdump.Dump, zdump.Filter) (printer.TableData, any)) *cobra.Command {
	var t ztunnelTarget
	var f zdump.Filter
	names := []string{"workloads", "services", "policies", "certificates", "connections"}
	cmd := &cobra.Command{
		Use:   "all [ZTUNNEL-POD]",
		Short: "Show every section of one ztunnel's configuration",
		Example: `  weftctl ztunnel-config all --node node-a
  weftctl ztunnel-config all --node node-a -o json > node-a.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, _, err := t.fetch(cmd, g, args)
			if err != nil {
				return err
			}
			format, _ := g.format()
			objs := map[string]any{}
			for i, r := range renders {
				tab, obj := r(d, f)
				objs[names[i]] = obj
				if format.Structured() {
					continue
				}
				if i > 0 {
					fmt.Fprintln(g.env.Out)
				}
				fmt.Fprintf(g.env.Out, "%s:\n", names[i])
				if err := printer.WriteTable(g.env.Out, tab, format == printer.Wide); err != nil {
					return err
				}
			}
			if format.Structured() {
				return printer.WriteObject(g.env.Out, format, objs)
			}
			return nil
		},
	}
	t.bind(cmd)
	cmd.Flags().StringVar(&f.Namespace, "workload-namespace", "", "only entries of this namespace")
	cmd.Flags().StringVar(&f.Address, "address", "", "only entries with this IP address")
	return cmd
}

// LogLevels is ztunnel's /logging answer.
type LogLevels struct {
	Default    string            `json:"default"`
	Components map[string]string `json:"components"`
}

func newZtunnelLogCmd(g *globals) *cobra.Command {
	var node, level string
	cmd := &cobra.Command{
		Use:   "log [ZTUNNEL-POD]",
		Short: "Show or change a ztunnel's log levels",
		Long: `Without --level, prints the default log level and per-component overrides.
--level takes LEVEL or COMPONENT:LEVEL, comma separated (levels: debug, info,
warn, error).`,
		Example: `  weftctl ztunnel-config log --node node-a
  weftctl ztunnel-config log --node node-a --level proxy:debug
  weftctl ztunnel-config log ztunnel-x7k2p --level info`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/logging"
			if level != "" {
				path += "?level=" + url.QueryEscape(level)
			}
			pod := ""
			if len(args) > 0 {
				pod = args[0]
			}
			body, p, err := ztunnelGet(cmd, g, node, pod, path)
			if err != nil {
				return err
			}
			var lv LogLevels
			if err := json.Unmarshal(body, &lv); err != nil {
				return fmt.Errorf("ztunnel %s: decode /logging: %w", p.Name, err)
			}
			format, _ := g.format()
			if format.Structured() {
				return printer.WriteObject(g.env.Out, format, lv)
			}
			fmt.Fprintf(g.env.Out, "%s (node %s): default level %s\n", p.Name, p.Spec.NodeName, lv.Default)
			if len(lv.Components) == 0 {
				return nil
			}
			t := printer.TableData{Header: []string{"COMPONENT", "LEVEL"}}
			keys := make([]string, 0, len(lv.Components))
			for k := range lv.Components {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Rows = append(t.Rows, []string{k, lv.Components[k]})
			}
			return printer.WriteTable(g.env.Out, t, false)
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the ztunnel running on this node")
	cmd.Flags().StringVar(&level, "level", "", "set levels: LEVEL or COMPONENT:LEVEL[,COMPONENT:LEVEL]")
	return cmd
}
