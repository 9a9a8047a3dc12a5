package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Where Weft's components run and how to reach them.
const (
	// DefaultSystemNamespace is where the manifests install Weft.
	DefaultSystemNamespace = "weft-system"
	// ZtunnelSelector, AgentSelector and IstiodSelector select the pods of
	// the ztunnel DaemonSet, the CNI agent DaemonSet and istiod-lite.
	ZtunnelSelector = "app=ztunnel"
	AgentSelector   = "app=weft-cni-agent"
	IstiodSelector  = "app=istiod-lite"
	// ZtunnelAdminPort is ztunnel's localhost-only admin port.
	ZtunnelAdminPort = 15000
	// IstiodDebugPort is istiod-lite's loopback debug port.
	IstiodDebugPort = 9876
)

// PodsBySelector lists the pods of ns matching selector, sorted by name.
func PodsBySelector(ctx context.Context, kc kubernetes.Interface, ns, selector string) ([]corev1.Pod, error) {
	l, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list pods %s in %s: %w", selector, ns, err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items, nil
}

// FindZtunnel picks the ztunnel pod to talk to: the named pod ("name" or
// "name.namespace"), else the one on node, else the first running one. The
// errors say how to find a valid choice.
func FindZtunnel(ctx context.Context, kc kubernetes.Interface, systemNS, node, pod string) (*corev1.Pod, error) {
	if pod != "" {
		name, ns, ok := strings.Cut(pod, ".")
		if !ok {
			ns = systemNS
		}
		p, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("ztunnel pod %q not found in namespace %s; list them with `kubectl -n %s get pods -l %s -o wide`, or use --node NODE", name, ns, ns, ZtunnelSelector)
		}
		if err != nil {
			return nil, fmt.Errorf("get pod %s/%s: %w", ns, name, err)
		}
		return p, nil
	}
	pods, err := PodsBySelector(ctx, kc, systemNS, ZtunnelSelector)
	if err != nil {
		return nil, err
	}
	if node != "" {
		if _, err := kc.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("node %q not found; nodes are: %s", node, NodeNames(ctx, kc))
		} else if err != nil {
			return nil, fmt.Errorf("get node %s: %w", node, err)
		}
		for i := range pods {
			if pods[i].Spec.NodeName == node {
				return &pods[i], nil
			}
		}
		return nil, fmt.Errorf("no ztunnel pod on node %s in namespace %s: is the node tainted or the ztunnel DaemonSet not scheduled there? (`kubectl -n %s describe daemonset ztunnel`, `weftctl check`)", node, systemNS, systemNS)
	}
	for i := range pods {
		if pods[i].Status.Phase == corev1.PodRunning {
			return &pods[i], nil
		}
	}
	if len(pods) > 0 {
		return &pods[0], nil
	}
	return nil, fmt.Errorf("no ztunnel pods in namespace %s: is Weft installed there? (run `weftctl check`, or pass -i/--weft-namespace)", systemNS)
}

// NodeNames lists the cluster's nodes for error messages.
func NodeNames(ctx context.Context, kc kubernetes.Interface) string {
	l, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) == 0 {
		return "(none found; `kubectl get nodes`)"
	}
	names := make([]string, len(l.Items))
	for i, n := range l.Items {
		names[i] = n.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// PodReady reports whether p is running with its Ready condition true.
func PodReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
