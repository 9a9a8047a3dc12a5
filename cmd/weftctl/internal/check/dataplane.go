package check

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
)

func dataPlane(ctx context.Context, r *run) (Category, bool) {
	c := Category{Name: "data-plane"}
	nodes, err := r.d.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		c.Results = append(c.Results, fail("can list nodes", err.Error(), "weftctl check needs to list nodes"))
		return c, false
	}
	var names []string
	for _, n := range nodes.Items {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	zt, _ := kube.PodsBySelector(ctx, r.d.Kube, r.d.SystemNS, kube.ZtunnelSelector)
	ag, _ := kube.PodsBySelector(ctx, r.d.Kube, r.d.SystemNS, kube.AgentSelector)
	c.Results = append(c.Results,
		perNode("every node has a ready ztunnel", names, zt, "ztunnel", r.d.SystemNS, kube.ZtunnelSelector),
		perNode("every node has a ready CNI agent", names, ag, "weft-cni-agent", r.d.SystemNS, kube.AgentSelector),
		cniInstalled(names, ag, r.d.SystemNS))
	return c, false
}

func perNode(desc string, nodes []string, pods []corev1.Pod, name, ns, selector string) Result {
	on := map[string]*corev1.Pod{}
	for i := range pods {
		on[pods[i].Spec.NodeName] = &pods[i]
	}
	var problems []string
	var firstBad *corev1.Pod
	for _, n := range nodes {
		p := on[n]
		switch {
		case p == nil:
			problems = append(problems, fmt.Sprintf("node %s: no %s pod", n, name))
		case !kube.PodReady(p):
			problems = append(problems, fmt.Sprintf("node %s: %s is not ready (%s)", n, p.Name, podState(p)))
			if firstBad == nil {
				firstBad = p
			}
		}
	}
	if len(problems) == 0 {
		return ok(desc)
	}
	hint := fmt.Sprintf("`kubectl -n %s describe daemonset %s`; a node without the pod may be tainted or the DaemonSet deleted", ns, name)
	if firstBad != nil {
		hint = fmt.Sprintf("`kubectl -n %s logs %s --all-containers` and `kubectl -n %s describe pod %s`", ns, firstBad.Name, ns, firstBad.Name)
	}
	return fail(desc, strings.Join(problems, "\n"), hint)
}

// podState is a short why-not-ready: the phase, or the first waiting or
// terminated container's reason.
func podState(p *corev1.Pod) string {
	all := append(append([]corev1.ContainerStatus{}, p.Status.ContainerStatuses...), p.Status.InitContainerStatuses...)
	for _, cs := range all {
		if w := cs.State.Waiting; w != nil {
			return fmt.Sprintf("container %s waiting: %s", cs.Name, w.Reason)
		}
		if t := cs.State.Terminated; t != nil && p.Status.Phase == corev1.PodRunning {
			return fmt.Sprintf("container %s terminated: %s", cs.Name, t.Reason)
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if !cs.Ready && cs.State.Running != nil {
			return fmt.Sprintf("container %s running but not ready", cs.Name)
		}
	}
	if p.DeletionTimestamp != nil {
		return "terminating"
	}
	return string(p.Status.Phase)
}

// cniInstalled checks that each agent pod's install-cni sidecar runs: it
// writes weft-cni into the node's conflist and restores it when the
// primary CNI rewrites the file, and exits when it cannot.
func cniInstalled(nodes []string, agents []corev1.Pod, ns string) Result {
	const desc = "CNI plugin is installed on every node"
	on := map[string]*corev1.Pod{}
	for i := range agents {
		on[agents[i].Spec.NodeName] = &agents[i]
	}
	var problems []string
	for _, n := range nodes {
		p := on[n]
		if p == nil {
			problems = append(problems, fmt.Sprintf("node %s: no installer (no weft-cni-agent pod)", n))
			continue
		}
		found := false
		for _, cs := range p.Status.InitContainerStatuses {
			if cs.Name != "install-cni" {
				continue
			}
			found = true
			if cs.State.Running == nil {
				problems = append(problems, fmt.Sprintf("node %s: install-cni in %s is not running (restarts: %d)", n, p.Name, cs.RestartCount))
			}
		}
		if !found && p.Status.Phase == corev1.PodRunning && len(p.Status.InitContainerStatuses) > 0 {
			problems = append(problems, fmt.Sprintf("node %s: %s has no install-cni container", n, p.Name))
		}
	}
	if len(problems) > 0 {
		return fail(desc, strings.Join(problems, "\n"), fmt.Sprintf("`kubectl -n %s logs POD -c install-cni`: the node's CNI conf dir must hold a conflist the installer can extend", ns))
	}
	return ok(desc)
}
