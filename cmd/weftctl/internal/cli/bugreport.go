package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/cmd/weftctl/internal/bugreport"
	"github.com/weftmesh/weft/cmd/weftctl/internal/check"
	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/waypoint"
)

func newBugReportCmd(g *globals) *cobra.Command {
	var file string
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "bug-report",
		Short: "Collect config dumps, logs, metrics, check output and versions into a tarball (secrets redacted)",
		Long: `Writes a gzipped tarball with: weftctl version and check output; nodes,
namespaces, waypoints and Weft's pods; each ztunnel's /config_dump, metrics and
logs; istiod-lite's and each CNI agent's logs, and each CNI agent's
held pods with a live check of their redirect rules. Secrets are never read; private
keys, tokens and credentials in what is collected are replaced by [REDACTED].`,
		Example: `  weftctl bug-report
  weftctl bug-report --file /tmp/report.tar.gz --since 30m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			now := g.env.Now().UTC()
			if file == "" {
				file = "weft-bug-report-" + now.Format("20060102T150405Z") + ".tar.gz"
			}
			a := collect(cmd.Context(), g, c, since)
			f, err := os.Create(file)
			if err != nil {
				return fmt.Errorf("create %s: %w (choose another path with --file)", file, err)
			}
			if err := a.Write(f, "weft-bug-report", now); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Out, "wrote %s (%d files)\n", file, len(a.Paths()))
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "tarball path (default weft-bug-report-<time>.tar.gz)")
	cmd.Flags().DurationVar(&since, "since", time.Hour, "how much of each log to include")
	return cmd
}

func addJSON(a *bugreport.Archive, path string, v any, err error) {
	if err != nil {
		a.Fail(path, err)
		return
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		a.Fail(path, err)
		return
	}
	a.Add(path, b)
}

func addYAML(a *bugreport.Archive, path string, v any, err error) {
	if err != nil {
		a.Fail(path, err)
		return
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		a.Fail(path, err)
		return
	}
	a.Add(path, b)
}

// collect gathers the report; what fails is recorded in errors.txt.
func collect(ctx context.Context, g *globals, c *kube.Clients, since time.Duration) *bugreport.Archive {
	a := bugreport.NewArchive()
	comps, err := componentVersions(ctx, g, c)
	addJSON(a, "version.json", Versions{Client: versionString(), Components: comps}, err)
	http := g.env.PodHTTP(c)
	rep := check.Run(ctx, check.Deps{Kube: c.Kube, Gateway: c.Gateway, HTTP: http, SystemNS: g.systemNS, Now: g.env.Now()}, false)
	addJSON(a, "check.json", rep, nil)

	nodes, err := c.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err == nil {
		for i := range nodes.Items {
			nodes.Items[i].ManagedFields = nil
		}
	}
	addYAML(a, "cluster/nodes.yaml", nodes, err)
	nss, err := c.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	labels := map[string]map[string]string{}
	if err == nil {
		for _, n := range nss.Items {
			labels[n.Name] = n.Labels
		}
	}
	addYAML(a, "cluster/namespace-labels.yaml", labels, err)
	wps, err := waypoint.List(ctx, c.Gateway, "")
	addYAML(a, "cluster/waypoints.yaml", wps, err)
	pods, err := c.Kube.CoreV1().Pods(g.systemNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		a.Fail(g.systemNS+"/pods.yaml", err)
		return a
	}
	for i := range pods.Items {
		pods.Items[i].ManagedFields = nil
	}
	addYAML(a, g.systemNS+"/pods.yaml", pods, nil)
	secs := int64(since.Seconds())
	for i := range pods.Items {
		p := &pods.Items[i]
		dir := fmt.Sprintf("%s/%s", p.Labels["app"], p.Name)
		for _, ct := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
			path := fmt.Sprintf("%s/%s.log", dir, ct.Name)
			rc, err := c.Kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: ct.Name, SinceSeconds: &secs}).Stream(ctx)
			if err != nil {
				a.Fail(path, err)
				continue
			}
			b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
			rc.Close()
			if err != nil {
				a.Fail(path, err)
				continue
			}
			a.Add(path, b)
		}
		if p.Labels["app"] == "weft-cni-agent" {
			// The agent's held pods with a live check of their rules.
			b, err := http.Get(ctx, p.Namespace, p.Name, kube.AgentAdminPort, kube.AgentPodsPath)
			if err != nil {
				a.Fail(dir+"/pods.json", err)
			} else {
				a.Add(dir+"/pods.json", b)
			}
		}
		if p.Labels["app"] != "ztunnel" {
			continue
		}
		for _, ep := range []struct {
			port       int
			path, file string
		}{{kube.ZtunnelAdminPort, "/config_dump", "config_dump.json"}, {ZtunnelMetricsPort, "/metrics", "metrics.txt"}} {
			b, err := http.Get(ctx, p.Namespace, p.Name, ep.port, ep.path)
			if err != nil {
				a.Fail(dir+"/"+ep.file, err)
				continue
			}
			a.Add(dir+"/"+ep.file, b)
		}
	}
	return a
}
