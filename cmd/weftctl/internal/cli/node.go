package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/diagnose"
	"github.com/weftmesh/weft/cmd/weftctl/internal/enroll"
	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
)

// ZtunnelMetricsPort serves ztunnel's Prometheus metrics.
const ZtunnelMetricsPort = 15020

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "node",
		Short:   "Inspect one node's data plane",
		Example: `  weftctl node diagnose node-a`,
	}
	var since time.Duration
	diag := &cobra.Command{
		Use:   "diagnose NODE",
		Short: "Everything one node knows: ztunnel and agent, xDS, pods vs ZDS, certificates, failures, top talkers",
		Long: `Reads the node's ztunnel configuration (admin port, through a port-forward),
its metrics and its recent access log, and compares the pods ztunnel holds
with the pods Kubernetes runs there. Exits 1 when it finds a problem.`,
		Example: `  weftctl node diagnose node-a
  weftctl node diagnose node-a --since 10m -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			in, err := gatherNode(cmd.Context(), g, c, args[0], since)
			if err != nil {
				return err
			}
			r := diagnose.Diagnose(in)
			format, _ := g.format()
			if format.Structured() {
				err = printer.WriteObject(g.env.Out, format, r)
			} else {
				err = diagnose.WriteText(g.env.Out, r)
			}
			if err != nil {
				return err
			}
			if len(r.Problems) > 0 {
				return ErrUnhealthy
			}
			return nil
		},
	}
	diag.Flags().DurationVar(&since, "since", time.Hour, "how far back to read ztunnel's access log")
	cmd.AddCommand(diag)
	return cmd
}

func gatherNode(ctx context.Context, g *globals, c *kube.Clients, name string, since time.Duration) (diagnose.Inputs, error) {
	in := diagnose.Inputs{Now: g.env.Now(), EnrolledNS: map[string]bool{}}
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return in, fmt.Errorf("node %q not found; nodes are: %s", name, kube.NodeNames(ctx, c.Kube))
	}
	if err != nil {
		return in, fmt.Errorf("get node %s: %w", name, err)
	}
	in.Node = node
	pick := func(selector string) *corev1.Pod {
		pods, _ := kube.PodsBySelector(ctx, c.Kube, g.systemNS, selector)
		for i := range pods {
			if pods[i].Spec.NodeName == name {
				return &pods[i]
			}
		}
		return nil
	}
	in.Ztunnel, in.Agent = pick(kube.ZtunnelSelector), pick(kube.AgentSelector)
	pods, err := c.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + name})
	if err != nil {
		return in, fmt.Errorf("list pods on %s: %w", name, err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == name && p.Namespace != g.systemNS {
			in.Pods = append(in.Pods, p)
		}
	}
	nss, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: enroll.DataplaneModeLabel + "=" + enroll.DataplaneModeAmbient})
	if err == nil {
		for _, n := range nss.Items {
			in.EnrolledNS[n.Name] = true
		}
	}
	zt := in.Ztunnel
	if zt == nil {
		in.DumpErr = fmt.Errorf("no ztunnel pod on node %s", name)
		return in, nil
	}
	http := g.env.PodHTTP(c)
	if body, err := http.Get(ctx, zt.Namespace, zt.Name, kube.ZtunnelAdminPort, "/config_dump"); err != nil {
		in.DumpErr = err
	} else if in.Dump, err = zdump.Parse(body); err != nil {
		in.DumpErr = err
	}
	in.Metrics, in.MetricsErr = http.Get(ctx, zt.Namespace, zt.Name, ZtunnelMetricsPort, "/metrics")
	if a := in.Agent; a != nil {
		in.AgentPods, in.AgentErr = kube.AgentPods(ctx, http, a.Namespace, a.Name)
	} else {
		in.AgentErr = fmt.Errorf("no CNI agent pod on node %s", name)
	}
	secs := int64(since.Seconds())
	tail := int64(20000)
	rc, err := c.Kube.CoreV1().Pods(zt.Namespace).GetLogs(zt.Name, &corev1.PodLogOptions{Container: "ztunnel", SinceSeconds: &secs, TailLines: &tail}).Stream(ctx)
	if err != nil {
		in.LogsErr = err
		return in, nil
	}
	defer rc.Close()
	in.Logs, in.LogsErr = io.ReadAll(io.LimitReader(rc, 64<<20))
	return in, nil
}
