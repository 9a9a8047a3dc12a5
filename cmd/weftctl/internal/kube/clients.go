package kube

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// Options are the kubeconfig flags every command shares.
type Options struct {
	// Kubeconfig is the path given with --kubeconfig; empty follows
	// KUBECONFIG and ~/.kube/config.
	Kubeconfig string
	// Context overrides the kubeconfig's current context.
	Context string
	// Namespace is -n; empty means the context's namespace.
	Namespace string
}

// Clients are the API clients a command needs.
type Clients struct {
	Kube    kubernetes.Interface
	Gateway gatewayclient.Interface
	// Rest is the client configuration (for port-forwards).
	Rest *rest.Config
	// Namespace is -n, else the context's namespace, else "default".
	Namespace string
}

// ErrNoKubeconfig is returned when no kubeconfig could be found.
var ErrNoKubeconfig = errors.New("no kubeconfig found: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config (for the lab, use the kubeconfig `weft-lab up` prints)")

// New loads the kubeconfig as kubectl does and builds the clients.
func New(o Options) (*Clients, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		if _, err := os.Stat(o.Kubeconfig); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w (check the --kubeconfig path)", o.Kubeconfig, err)
		}
		rules.ExplicitPath = o.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, ErrNoKubeconfig
		}
		if o.Context != "" {
			return nil, fmt.Errorf("load kubeconfig with context %q: %w (list contexts with `kubectl config get-contexts`)", o.Context, err)
		}
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "weftctl"
	ns := o.Namespace
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	gc, err := gatewayclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("gateway api client: %w", err)
	}
	return &Clients{Kube: kc, Gateway: gc, Rest: cfg, Namespace: ns}, nil
}
