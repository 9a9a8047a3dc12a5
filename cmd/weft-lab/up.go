package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/e2e/lab"
)

func newBuildCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "build",
		Short: "Build the pinned Kubernetes, etcd, CoreDNS and CNI binaries (once per pin change)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.resolve(); err != nil {
				return err
			}
			if _, err := lab.EnsurePinned(cmd.Context(), g.root, os.Stderr, g.logger()); err != nil {
				return err
			}
			_, err := lab.EnsureEcho(cmd.Context(), g.root, os.Stderr)
			return err
		},
	}
}

func newUpCmd(g *globals) *cobra.Command {
	var nodes int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a lab in the background and wait until every node is Ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.resolve(); err != nil {
				return err
			}
			start := time.Now()
			if _, err := lab.EnsurePinned(cmd.Context(), g.root, os.Stderr, g.logger()); err != nil {
				return err
			}
			echo, err := lab.EnsureEcho(cmd.Context(), g.root, os.Stderr)
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			s, err := lab.Launch(cmd.Context(), lab.LaunchOptions{Name: g.name, Nodes: nodes, Root: g.root, Self: self, Echo: echo, Timeout: timeout})
			if err != nil {
				return err
			}
			fmt.Printf("lab %s: %d nodes Ready in %s (supervisor %s after start)\n", s.Name, len(s.Nodes),
				time.Since(start).Round(100*time.Millisecond), s.NodesReady.Round(100*time.Millisecond))
			fmt.Printf("export KUBECONFIG=%s\n", s.Kubeconfig)
			return nil
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 2, "number of nodes")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "how long to wait for the nodes to be Ready")
	return cmd
}

func newServeCmd(g *globals) *cobra.Command {
	var nodes int
	var echo string
	cmd := &cobra.Command{
		Use:    "serve",
		Short:  "Run a lab in the foreground until interrupted (what up starts in the background)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.resolve(); err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary: %w", err)
			}
			bins := lab.BinariesAt(g.root)
			if echo != "" {
				bins.Echo = echo
			}
			return lab.Serve(cmd.Context(), lab.Options{Name: g.name, Nodes: nodes, Root: g.root, Binaries: &bins, Shim: self, Log: g.logger()})
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 2, "number of nodes")
	cmd.Flags().StringVar(&echo, "echo", "", "binary for the weft/echo image (default: the lab's own build)")
	return cmd
}

func newDownCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop a lab and remove every namespace, link, mount, process and state dir it made",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.resolve(); err != nil {
				return err
			}
			names := []string{g.name}
			if all {
				var err error
				if names, err = lab.ListLabs(g.root); err != nil {
					return err
				}
			}
			var failed error
			for _, n := range names {
				if err := lab.Down(cmd.Context(), g.root, n, g.logger()); err != nil {
					fmt.Fprintf(os.Stderr, "lab %s: %v\n", n, err)
					failed = fmt.Errorf("some labs were not fully removed")
					continue
				}
				fmt.Printf("lab %s: down\n", n)
			}
			return failed
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "stop every lab with a state dir under the repository")
	return cmd
}
