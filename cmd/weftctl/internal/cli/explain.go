package cli

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/cmd/weftctl/internal/enroll"
	"github.com/weftmesh/weft/cmd/weftctl/internal/explain"
	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
)

func newExperimentalCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "x",
		Aliases: []string{"experimental"},
		Short:   "Experimental commands",
		Example: `  weftctl x explain demo/client-7d9f echo.demo:80`,
	}
	cmd.AddCommand(newExplainCmd(g))
	return cmd
}

// Explanation is `x explain -o json`: the dump-based result plus what the
// API says about the source's enrollment.
type Explanation struct {
	*explain.Result
	Ztunnel     string   `json:"ztunnel"`
	SourceNotes []string `json:"sourceNotes,omitempty"`
}

func newExplainCmd(g *globals) *cobra.Command {
	var t ztunnelTarget
	cmd := &cobra.Command{
		Use:   "explain FROM TO[:PORT]",
		Short: "Explain what Weft does with a connection: path, identities and the authorization verdict",
		Long: `FROM is a pod (NAMESPACE/POD, POD.NAMESPACE, or POD with -n) or an IP. TO is a
pod, a service (NAME.NAMESPACE or its hostname) or an IP, with an optional
port. weftctl reads the source node's ztunnel configuration and evaluates its
authorization policies with ztunnel's own engine.`,
		Example: `  weftctl x explain demo/client-7d9f echo.demo:80
  weftctl x explain client-7d9f -n demo 10.244.1.6:8080
  weftctl x explain legacy/old-0 demo/echo-1:8080 -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to := args[0], args[1]
			c, err := g.clients()
			if err != nil && t.file == "" {
				return err
			}
			var notes []string
			node := t.node
			if ns, name, ok := podRef(from, c); ok {
				from = ns + "/" + name
				if c != nil {
					if p, perr := c.Kube.CoreV1().Pods(ns).Get(cmd.Context(), name, metav1.GetOptions{}); perr == nil {
						if node == "" {
							node = p.Spec.NodeName
						}
						notes = sourceNotes(cmd, c.Kube, p)
					}
				}
			}
			t2 := t
			t2.node = node
			d, zt, err := t2.fetch(cmd, g, nil)
			if err != nil {
				return err
			}
			r, err := explain.Explain(d, from, to)
			if err != nil {
				return err
			}
			out := Explanation{Result: r, SourceNotes: notes}
			if zt != nil {
				out.Ztunnel = fmt.Sprintf("%s (node %s)", zt.Name, zt.Spec.NodeName)
			}
			format, _ := g.format()
			if format.Structured() {
				return printer.WriteObject(g.env.Out, format, out)
			}
			if out.Ztunnel != "" {
				fmt.Fprintf(g.env.Out, "(from the configuration of ztunnel %s)\n", out.Ztunnel)
			}
			for _, n := range notes {
				fmt.Fprintf(g.env.Out, "SOURCE    %s\n", n)
			}
			return explain.WriteText(g.env.Out, r)
		},
	}
	t.bind(cmd)
	return cmd
}

// sourceNotes explains, from the API, why a pod is or is not in the mesh.
func sourceNotes(cmd *cobra.Command, kc kubernetes.Interface, p *corev1.Pod) []string {
	var notes []string
	if v, ok := p.Labels[enroll.DataplaneModeLabel]; ok {
		notes = append(notes, fmt.Sprintf("pod label %s=%s", enroll.DataplaneModeLabel, v))
	}
	if ns, err := kc.CoreV1().Namespaces().Get(cmd.Context(), p.Namespace, metav1.GetOptions{}); err == nil {
		v, ok := ns.Labels[enroll.DataplaneModeLabel]
		switch {
		case !ok:
			notes = append(notes, fmt.Sprintf("namespace %s has no %s label: enroll it with `weftctl namespace enroll %s`", p.Namespace, enroll.DataplaneModeLabel, p.Namespace))
		case v != enroll.DataplaneModeAmbient && v != enroll.DataplaneModeNone:
			notes = append(notes, fmt.Sprintf("namespace %s is labelled %s=%q, which is not a valid mode (did you mean %q?)", p.Namespace, enroll.DataplaneModeLabel, v, enroll.DataplaneModeAmbient))
		}
	}
	if a, ok := p.Annotations[enroll.RedirectionAnnotation]; ok {
		notes = append(notes, fmt.Sprintf("pod annotation %s=%s", enroll.RedirectionAnnotation, a))
	} else if enroll.InMesh(p) {
		notes = append(notes, fmt.Sprintf("pod has no %s annotation: its traffic is not redirected to ztunnel", enroll.RedirectionAnnotation))
	}
	return notes
}

// podRef splits "ns/name", "name.ns" or "name" (in -n's namespace); an IP
// is not a pod reference.
func podRef(s string, c *kube.Clients) (ns, name string, ok bool) {
	if _, err := netip.ParseAddr(s); err == nil {
		return "", "", false
	}
	if ns, name, ok := strings.Cut(s, "/"); ok {
		return ns, name, true
	}
	if name, ns, ok := strings.Cut(s, "."); ok {
		return ns, name, true
	}
	if c == nil {
		return "", "", false
	}
	return c.Namespace, s, true
}
