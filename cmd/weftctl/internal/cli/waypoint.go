package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
	"github.com/weftmesh/weft/cmd/weftctl/internal/waypoint"
)

func newWaypointCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "waypoint",
		Aliases: []string{"wp"},
		Short:   "Generate, apply, list, inspect and delete waypoints (L7 proxies for a namespace)",
		Example: `  weftctl waypoint apply -n demo --enroll-namespace --wait
  weftctl waypoint list -A
  weftctl waypoint status -n demo
  weftctl waypoint delete waypoint -n demo`,
	}
	cmd.AddCommand(newWaypointGenerateCmd(g, false), newWaypointGenerateCmd(g, true), newWaypointListCmd(g), newWaypointStatusCmd(g), newWaypointDeleteCmd(g))
	return cmd
}

func newWaypointGenerateCmd(g *globals, apply bool) *cobra.Command {
	var s waypoint.Spec
	var enrollNS, wait, overwrite bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Print a waypoint Gateway manifest",
		Example: `  weftctl waypoint generate -n demo
  weftctl waypoint generate -n demo --name wp-all --for all > waypoint.yaml`,
		Args: cobra.NoArgs,
	}
	if apply {
		cmd.Use, cmd.Short = "apply", "Create or update a waypoint Gateway"
		cmd.Example = `  weftctl waypoint apply -n demo
  weftctl waypoint apply -n demo --for all --enroll-namespace --wait`
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := g.clients()
		if err != nil {
			return err
		}
		s.Namespace = c.Namespace
		if err := s.Validate(); err != nil {
			return err
		}
		gw := waypoint.Gateway(s)
		if !apply {
			b, err := waypoint.YAML(gw)
			if err != nil {
				return err
			}
			_, err = g.env.Out.Write(b)
			return err
		}
		if err := waypoint.Apply(cmd.Context(), c.Gateway, gw); err != nil {
			return err
		}
		fmt.Fprintf(g.env.Out, "waypoint %s/%s applied\n", s.Namespace, s.Name)
		if enrollNS {
			if err := waypoint.EnrollNamespace(cmd.Context(), c.Kube, s.Namespace, s.Name, overwrite); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Out, "namespace %s labelled %s=%s\n", s.Namespace, waypoint.UseWaypointLabel, s.Name)
		}
		if wait {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := waypoint.WaitProgrammed(ctx, c.Gateway, s.Namespace, s.Name, time.Second); err != nil {
				return err
			}
			fmt.Fprintf(g.env.Out, "waypoint %s/%s is programmed\n", s.Namespace, s.Name)
		}
		return nil
	}
	cmd.Flags().StringVar(&s.Name, "name", waypoint.DefaultName, "waypoint name")
	cmd.Flags().StringVar(&s.For, "for", "service", "traffic the waypoint handles: service|workload|all|none")
	cmd.Flags().StringVarP(&s.Revision, "revision", "r", "", "control plane revision label (istio.io/rev)")
	if apply {
		cmd.Flags().BoolVar(&enrollNS, "enroll-namespace", false, "label the namespace istio.io/use-waypoint=NAME")
		cmd.Flags().BoolVar(&overwrite, "overwrite", false, "with --enroll-namespace, replace another waypoint in the namespace label")
		cmd.Flags().BoolVar(&wait, "wait", false, "wait until the Gateway is Programmed")
		cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	}
	return cmd
}

func newWaypointListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List waypoints (NAMESPACE NAME REVISION PROGRAMMED)",
		Example: `  weftctl waypoint list -n demo
  weftctl waypoint list -A -o yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			ns := c.Namespace
			if g.allNS {
				ns = ""
			}
			gws, err := waypoint.List(cmd.Context(), c.Gateway, ns)
			if err != nil {
				return err
			}
			format, _ := g.format()
			if !format.Structured() && len(gws) == 0 {
				where := "namespace " + ns
				if ns == "" {
					where = "any namespace"
				}
				fmt.Fprintf(g.env.Err, "No waypoints found in %s.\n", where)
				return nil
			}
			t := printer.TableData{Header: []string{"NAMESPACE", "NAME", "REVISION", "PROGRAMMED"}, WideHeader: []string{"FOR", "ADDRESS"}}
			for i := range gws {
				gw := &gws[i]
				ok, _ := waypoint.Programmed(gw)
				prog := "False"
				if ok {
					prog = "True"
				}
				addr := ""
				if len(gw.Status.Addresses) > 0 {
					addr = gw.Status.Addresses[0].Value
				}
				t.Rows = append(t.Rows, []string{gw.Namespace, gw.Name, waypoint.Revision(gw), prog})
				t.WideRows = append(t.WideRows, []string{gw.Labels[waypoint.ForLabel], addr})
			}
			if gws == nil {
				return printer.Write(g.env.Out, format, t, []any{})
			}
			return printer.Write(g.env.Out, format, t, gws)
		},
	}
}

func newWaypointStatusCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a waypoint's conditions",
		Example: `  weftctl waypoint status -n demo
  weftctl waypoint status -n demo --name wp-all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			gw, err := c.Gateway.GatewayV1().Gateways(c.Namespace).Get(cmd.Context(), name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return fmt.Errorf("waypoint %s/%s not found; see `weftctl waypoint list -A`", c.Namespace, name)
			}
			if err != nil {
				return fmt.Errorf("get waypoint: %w", err)
			}
			format, _ := g.format()
			t := printer.TableData{Header: []string{"NAMESPACE", "NAME", "STATUS", "TYPE", "REASON", "MESSAGE"}}
			for _, cond := range gw.Status.Conditions {
				t.Rows = append(t.Rows, []string{gw.Namespace, gw.Name, string(cond.Status), cond.Type, cond.Reason, cond.Message})
			}
			if len(gw.Status.Conditions) == 0 {
				t.Rows = append(t.Rows, []string{gw.Namespace, gw.Name, "Unknown", "Programmed", "Pending", "no controller has reported on this Gateway yet"})
			}
			return printer.Write(g.env.Out, format, t, gw.Status)
		},
	}
	cmd.Flags().StringVar(&name, "name", waypoint.DefaultName, "waypoint name")
	return cmd
}

func newWaypointDeleteCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "delete [NAME...]",
		Short: "Delete waypoints",
		Example: `  weftctl waypoint delete waypoint -n demo
  weftctl waypoint delete --all -n demo`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.clients()
			if err != nil {
				return err
			}
			names := args
			if all {
				gws, err := waypoint.List(cmd.Context(), c.Gateway, c.Namespace)
				if err != nil {
					return err
				}
				names = nil
				for _, gw := range gws {
					names = append(names, gw.Name)
				}
			}
			if len(names) == 0 && !all {
				return fmt.Errorf("name a waypoint to delete, or pass --all")
			}
			for _, n := range names {
				err := c.Gateway.GatewayV1().Gateways(c.Namespace).Delete(cmd.Context(), n, metav1.DeleteOptions{})
				if apierrors.IsNotFound(err) {
					return fmt.Errorf("waypoint %s/%s not found; see `weftctl waypoint list -n %s`", c.Namespace, n, c.Namespace)
				}
				if err != nil {
					return fmt.Errorf("delete waypoint %s/%s: %w", c.Namespace, n, err)
				}
				fmt.Fprintf(g.env.Out, "waypoint %s/%s deleted\n", c.Namespace, n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "delete every waypoint in the namespace")
	return cmd
}
