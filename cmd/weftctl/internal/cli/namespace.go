package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/cmd/weftctl/internal/enroll"
	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
)

func newNamespaceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "namespace",
		Aliases: []string{"ns"},
		Short:   "Enroll namespaces in the mesh or take them out",
		Example: `  weftctl namespace enroll demo --wait
  weftctl namespace unenroll demo`,
	}
	cmd.AddCommand(newEnrollCmd(g, true), newEnrollCmd(g, false))
	return cmd
}

func newEnrollCmd(g *globals, in bool) *cobra.Command {
	var wait bool
	var timeout time.Duration
	use, short, example := "enroll NAME", "Label a namespace istio.io/dataplane-mode=ambient", `  weftctl namespace enroll demo
  weftctl namespace enroll demo --wait --timeout 2m`
	if !in {
		use, short, example = "unenroll NAME", "Remove a namespace's istio.io/dataplane-mode label", `  weftctl namespace unenroll demo
  weftctl namespace unenroll demo --wait`
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Example: example,
		Long: short + `. With --wait, waits until every pod has (enroll) or has lost
(unenroll) the node agent's ambient.istio.io/redirection annotation, and
otherwise lists the pods that are stuck and why.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			ns := args[0]
			if err := enroll.SetLabel(cmd.Context(), c.Kube, ns, in); err != nil {
				return err
			}
			verb := "enrolled in"
			if !in {
				verb = "removed from"
			}
			fmt.Fprintf(g.env.Out, "namespace %s %s the mesh\n", ns, verb)
			if !wait {
				return nil
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			stuck, err := enroll.Wait(ctx, c.Kube, g.systemNS, ns, in, time.Second)
			if err != nil {
				return err
			}
			if len(stuck) == 0 {
				fmt.Fprintf(g.env.Out, "all pods in %s are %s\n", ns, map[bool]string{true: "redirected (ambient.istio.io/redirection=enabled)", false: "released"}[in])
				return nil
			}
			fmt.Fprintf(g.env.Out, "%d pod(s) in %s not ready after %s:\n", len(stuck), ns, timeout)
			t := printer.TableData{Header: []string{"POD", "NODE", "REASON"}}
			for _, s := range stuck {
				t.Rows = append(t.Rows, []string{s.Pod, s.Node, s.Reason})
			}
			if err := printer.WriteTable(g.env.Out, t, false); err != nil {
				return err
			}
			return ErrUnhealthy
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for every pod's redirection to follow")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}
