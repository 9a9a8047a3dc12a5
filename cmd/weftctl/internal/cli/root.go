package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
)

// Env is what commands need from the outside world; tests replace it.
type Env struct {
	// Out and Err are stdout and stderr.
	Out, Err io.Writer
	// Clients builds the API clients from the global flags.
	Clients func(kube.Options) (*kube.Clients, error)
	// PodHTTP reaches pods' localhost ports for the given clients.
	PodHTTP func(*kube.Clients) kube.PodHTTP
	// Now is the clock (certificate validity, ages).
	Now func() time.Time
}

// DefaultEnv talks to the cluster through the kubeconfig and port-forwards.
func DefaultEnv(out, errOut io.Writer) Env {
	return Env{
		Out: out, Err: errOut,
		Clients: kube.New,
		PodHTTP: func(c *kube.Clients) kube.PodHTTP { return &kube.PortForwarder{Rest: c.Rest, Kube: c.Kube} },
		Now:     time.Now,
	}
}

// ErrUnhealthy is returned when a command has already printed why the
// installation is unhealthy; the process exits 1 without more output.
var ErrUnhealthy = errors.New("unhealthy")

// globals holds the persistent flags.
type globals struct {
	env      Env
	kube     kube.Options
	systemNS string
	output   string
	allNS    bool
	cached   *kube.Clients
}

func (g *globals) clients() (*kube.Clients, error) {
	if g.cached != nil {
		return g.cached, nil
	}
	c, err := g.env.Clients(g.kube)
	if err != nil {
		return nil, err
	}
	g.cached = c
	return c, nil
}

func (g *globals) format() (printer.Format, error) { return printer.ParseFormat(g.output) }

// NewRoot returns the weftctl command tree.
func NewRoot(env Env) *cobra.Command {
	g := &globals{env: env}
	root := &cobra.Command{
		Use:   "weftctl",
		Short: "Operate a Weft ambient mesh: enroll, waypoints, ztunnel config, checks",
		Long: `weftctl operates a Weft sidecar-less mesh. It talks to the API server through
your kubeconfig and reaches ztunnel's localhost admin port through a Kubernetes
port-forward, so it works the same on the lab and on any cluster.`,
		Example: `  # Is the installation healthy?
  weftctl check

  # Put a namespace in the mesh and wait for its pods
  weftctl namespace enroll demo --wait

  # What does the ztunnel on node-a know about workloads?
  weftctl ztunnel-config workloads --node node-a`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	pf := root.PersistentFlags()
	pf.StringVar(&g.kube.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	pf.StringVar(&g.kube.Context, "context", "", "kubeconfig context to use")
	pf.StringVarP(&g.kube.Namespace, "namespace", "n", "", "namespace (default: the context's namespace)")
	pf.BoolVarP(&g.allNS, "all-namespaces", "A", false, "all namespaces (list commands)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table|wide|json|yaml")
	pf.StringVarP(&g.systemNS, "weft-namespace", "i", kube.DefaultSystemNamespace, "namespace Weft is installed in")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		_, err := g.format()
		return err
	}
	root.AddCommand(newVersionCmd(g), newZtunnelConfigCmd(g), newNamespaceCmd(g), newCheckCmd(g), newWaypointCmd(g),
		newNodeCmd(g), newExperimentalCmd(g), newBugReportCmd(g))
	return root
}

// Execute runs weftctl with args and returns the process exit code.
func Execute(ctx context.Context, env Env, args []string) int {
	root := NewRoot(env)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, ErrUnhealthy) {
			fmt.Fprintf(env.Err, "Error: %v\n", err)
		}
		return 1
	}
	return 0
}
