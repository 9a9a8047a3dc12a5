package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/e2e/lab"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the lab and its nodes; exit 0 only when it runs and every node is Ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.resolve(); err != nil {
				return err
			}
			s, err := lab.ReadState(lab.StateDir(g.root, g.name))
			if err != nil {
				return fmt.Errorf("lab %s is not running: %w", g.name, err)
			}
			running := lab.Running(s)
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "LAB\tPHASE\tSUPERVISOR\tAPI SERVER\tKUBECONFIG")
			sup := fmt.Sprint(s.SupervisorPID)
			if !running {
				sup += " (gone)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Phase, sup, s.APIServer, s.Kubeconfig)
			_ = w.Flush()
			if !running || s.Phase != lab.PhaseReady {
				return errors.New("lab is not healthy; weft-lab down, then weft-lab up")
			}
			cs, err := lab.ClientsetFor(s.Kubeconfig)
			if err != nil {
				return err
			}
			nodes, err := cs.CoreV1().Nodes().List(cmd.Context(), metav1.ListOptions{})
			if err != nil {
				return fmt.Errorf("list nodes: %w", err)
			}
			ready := map[string]string{}
			for _, n := range nodes.Items {
				ready[n.Name] = "NotReady"
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
						ready[n.Name] = "Ready"
					}
				}
			}
			fmt.Println()
			fmt.Fprintln(w, "NODE\tSTATUS\tIP\tPOD CIDR\tNETNS")
			healthy := true
			for _, n := range s.Nodes {
				st := ready[n.Name]
				if st == "" {
					st = "Missing"
				}
				healthy = healthy && st == "Ready"
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", n.Name, st, n.IP, n.PodCIDR, n.Netns)
			}
			_ = w.Flush()
			if rss, n, err := lab.ResidentBytes(g.root, s.Name); err == nil {
				fmt.Printf("\nresident memory: %d MiB in %d processes\n", rss>>20, n)
			}
			if !healthy {
				return errors.New("some nodes are not Ready; see " + s.Dir + "/logs")
			}
			return nil
		},
	}
}

func newKubeconfigCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the path of the lab's admin kubeconfig (export KUBECONFIG=$(weft-lab kubeconfig))",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.resolve(); err != nil {
				return err
			}
			s, err := lab.ReadState(lab.StateDir(g.root, g.name))
			if err != nil {
				return fmt.Errorf("lab %s is not running: %w", g.name, err)
			}
			fmt.Println(s.Kubeconfig)
			return nil
		},
	}
}
