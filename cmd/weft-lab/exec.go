package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/e2e/lab"
)

func newExecCmd(g *globals) *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "exec [-n NAMESPACE] POD -- COMMAND [ARGS...]",
		Short: "Run a command in a pod's network namespace (host filesystem; lab binaries such as echo first on the path)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return errors.New("usage: weft-lab exec [-n NAMESPACE] POD -- COMMAND [ARGS...]")
			}
			if err := g.resolve(); err != nil {
				return err
			}
			s, err := lab.ReadState(lab.StateDir(g.root, g.name))
			if err != nil {
				return fmt.Errorf("lab %s is not running: %w", g.name, err)
			}
			cs, err := lab.ClientsetFor(s.Kubeconfig)
			if err != nil {
				return err
			}
			path, err := lab.PodNetns(cmd.Context(), cs, s.Name, namespace, args[0])
			if err != nil {
				return err
			}
			err = lab.ExecIn(cmd.Context(), path, lab.BinDirs(g.root), args[1:], os.Stdin, os.Stdout, os.Stderr)
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "default", "the pod's namespace")
	return cmd
}
