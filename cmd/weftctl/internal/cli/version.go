package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
	"github.com/weftmesh/weft/pkg/version"
)

// ComponentVersion is one running component's version, from its image.
type ComponentVersion struct {
	Component string `json:"component"`
	Pod       string `json:"pod"`
	Node      string `json:"node"`
	Version   string `json:"version"`
	Ready     bool   `json:"ready"`
}

// Versions is `weftctl version -o json`.
type Versions struct {
	Client     string             `json:"clientVersion"`
	Components []ComponentVersion `json:"components,omitempty"`
}

func newVersionCmd(g *globals) *cobra.Command {
	var remote bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client version and the versions of istiod-lite and each ztunnel",
		Example: `  weftctl version
  weftctl version --remote=false
  weftctl version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, _ := g.format()
			v := Versions{Client: versionString()}
			if !remote {
				if f.Structured() {
					return printer.WriteObject(g.env.Out, f, v)
				}
				_, err := fmt.Fprintf(g.env.Out, "client version: %s\n", v.Client)
				return err
			}
			c, err := g.clients()
			if err == nil {
				v.Components, err = componentVersions(cmd.Context(), g, c)
			}
			if f.Structured() {
				if werr := printer.WriteObject(g.env.Out, f, v); werr != nil {
					return werr
				}
			} else {
				fmt.Fprintf(g.env.Out, "client version: %s\n", v.Client)
				if len(v.Components) > 0 {
					t := printer.TableData{Header: []string{"COMPONENT", "POD", "NODE", "VERSION", "READY"}}
					for _, cv := range v.Components {
						t.Rows = append(t.Rows, []string{cv.Component, cv.Pod, cv.Node, cv.Version, fmt.Sprint(cv.Ready)})
					}
					if werr := printer.WriteTable(g.env.Out, t, false); werr != nil {
						return werr
					}
				}
			}
			if err != nil {
				return fmt.Errorf("control plane version unavailable: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&remote, "remote", true, "also report istiod-lite's and each ztunnel's version")
	return cmd
}

func componentVersions(ctx context.Context, g *globals, c *kube.Clients) ([]ComponentVersion, error) {
	var out []ComponentVersion
	for _, comp := range []struct{ name, selector string }{
		{"istiod-lite", kube.IstiodSelector}, {"ztunnel", kube.ZtunnelSelector}, {"weft-cni-agent", kube.AgentSelector},
	} {
		pods, err := kube.PodsBySelector(ctx, c.Kube, g.systemNS, comp.selector)
		if err != nil {
			return out, err
		}
		for i := range pods {
			out = append(out, ComponentVersion{Component: comp.name, Pod: pods[i].Name, Node: pods[i].Spec.NodeName,
				Version: imageVersion(&pods[i]), Ready: kube.PodReady(&pods[i])})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no Weft pods in namespace %s (is Weft installed? pass -i/--weft-namespace if elsewhere)", g.systemNS)
	}
	return out, nil
}

// imageVersion is the tag (or digest) of the pod's first container image.
func imageVersion(p *corev1.Pod) string {
	if len(p.Spec.Containers) == 0 {
		return "unknown"
	}
	img := p.Spec.Containers[0].Image
	if i := strings.LastIndex(img, "@"); i >= 0 {
		return img[i+1:]
	}
	if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
		return img[i+1:]
	}
	return "latest"
}

// versionString is the client version line's value (a seam for tests).
func versionString() string { return version.String() }
