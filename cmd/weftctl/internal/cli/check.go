package cli

import (
	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/cmd/weftctl/internal/check"
	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
)

func newCheckCmd(g *globals) *cobra.Command {
	var pre bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that Weft is installed and healthy (or, with --pre, that it can be installed)",
		Long: `Runs categories of checks in the style of linkerd check: the Kubernetes API,
CRDs, istiod-lite and the ztunnels' xDS state, a ready ztunnel and CNI agent on
every node, and every enrolled pod's redirection and certificate. Each line is
√ (passed), ‼ (warning) or × (failed, with a hint). Exits 1 on any ×.`,
		Example: `  weftctl check
  weftctl check --pre
  weftctl check -o json | jq '.categories[].checks[] | select(.result != "success")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, _ := g.format()
			var rep check.Report
			c, err := g.clients()
			if err != nil {
				rep = check.ClientError(err)
			} else {
				rep = check.Run(cmd.Context(), check.Deps{Kube: c.Kube, Gateway: c.Gateway, HTTP: g.env.PodHTTP(c), SystemNS: g.systemNS, Now: g.env.Now()}, pre)
			}
			if format.Structured() {
				err = printer.WriteObject(g.env.Out, format, rep)
			} else {
				err = check.WriteText(g.env.Out, rep)
			}
			if err != nil {
				return err
			}
			if !rep.Success {
				return ErrUnhealthy
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&pre, "pre", false, "run the pre-installation checks instead")
	return cmd
}
