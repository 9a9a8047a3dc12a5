package main

import (
	"errors"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/e2e/lab/kubelet"
)

func newKubeletCmd(g *globals) *cobra.Command {
	var config, format string
	cmd := &cobra.Command{
		Use:    "kubelet --config FILE",
		Short:  "Run kubelet-lite for one node (the lab starts it inside the node's namespace)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" {
				return errors.New("--config is required")
			}
			cfg, err := kubelet.LoadConfig(config)
			if err != nil {
				return err
			}
			var lvl slog.Level
			_ = lvl.UnmarshalText([]byte(g.logLevel))
			var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})
			if format == "json" {
				h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})
			}
			return kubelet.Run(cmd.Context(), cfg, slog.New(h).With("node", cfg.NodeName))
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "kubelet-lite JSON config file")
	cmd.Flags().StringVar(&format, "log-format", "text", "log encoding: text or json")
	return cmd
}
