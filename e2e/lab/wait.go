package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Startup limits.
const (
	apiServerTimeout  = 90 * time.Second
	nodesReadyTimeout = 120 * time.Second
)

// Kubectl runs the lab's kubectl with the admin kubeconfig and returns its
// standard output; stdin may be nil. The error includes standard error.
func (c *Cluster) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	return runKubectl(ctx, c.Bins.Kubectl, c.Kubeconfig, stdin, args...)
}

func runKubectl(ctx context.Context, kubectl, kubeconfig string, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// waitAPIServer polls /readyz until the API server is ready or a component
// dies.
func (c *Cluster) waitAPIServer(ctx context.Context) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, apiServerTimeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Err(); err != nil {
			return false, err
		}
		_, last = cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for kube-apiserver (see %s/logs): %w (last: %v)", c.Dir, err, last)
	}
	return nil
}

// waitNodesReady waits until every planned node exists and is Ready.
func (c *Cluster) waitNodesReady(ctx context.Context) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	var missing []string
	for _, n := range c.Plan.Nodes {
		missing = append(missing, n.Name)
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, nodesReadyTimeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Err(); err != nil {
			return false, err
		}
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready := map[string]bool{}
		for _, n := range nodes.Items {
			ready[n.Name] = nodeReady(&n)
		}
		missing = missing[:0]
		for _, n := range c.Plan.Nodes {
			if !ready[n.Name] {
				missing = append(missing, n.Name)
			}
		}
		return len(missing) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("wait for nodes %v to be Ready (see %s/logs): %w", missing, c.Dir, err)
	}
	return nil
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitDNS waits until the CoreDNS Deployment has an available replica.
func (c *Cluster) WaitDNS(ctx context.Context) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, nodesReadyTimeout, true, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return d.Status.AvailableReplicas > 0, nil
	})
	if err != nil {
		return fmt.Errorf("wait for CoreDNS: %w", err)
	}
	return nil
}
