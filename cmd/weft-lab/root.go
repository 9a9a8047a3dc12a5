package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/e2e/lab"
)

// DefaultName is the lab name the CLI uses when --name is not given.
const DefaultName = "weft"

// globals are the flags every subcommand shares.
type globals struct {
	name, root, logLevel string
}

func (g *globals) resolve() error {
	if err := lab.ValidateName(g.name); err != nil {
		return err
	}
	if g.root == "" {
		r, err := lab.RepoRoot(".")
		if err != nil {
			return fmt.Errorf("%w (run inside the repository or pass --root)", err)
		}
		g.root = r
	}
	return nil
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "weft-lab",
		Short:         "Run a real multi-node Kubernetes cluster in network namespaces",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.name, "name", DefaultName, "lab name, also the prefix of every namespace, link and state dir it makes")
	root.PersistentFlags().StringVar(&g.root, "root", "", "repository root (default: found from the working directory)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(newBuildCmd(g), newUpCmd(g), newServeCmd(g), newDownCmd(g), newStatusCmd(g),
		newKubeconfigCmd(g), newExecCmd(g), newKubeletCmd(g))
	return root
}
