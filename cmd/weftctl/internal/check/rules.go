package check

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
)

// maxDriftLines bounds how much of one pod's drift the check prints; node
// diagnose shows all of it.
const maxDriftLines = 3

// redirectRules asks each node's CNI agent, which owns the pods' network
// namespaces, to compare every redirected pod's live rules with the
// expected set.
func redirectRules(ctx context.Context, r *run, pods []corev1.Pod) Result {
	const desc = "enrolled pods' redirect rules are in place"
	byNode := map[string][]corev1.Pod{}
	for _, p := range pods {
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	agents, _ := kube.PodsBySelector(ctx, r.d.Kube, r.d.SystemNS, kube.AgentSelector)
	agentOn := map[string]*corev1.Pod{}
	for i := range agents {
		agentOn[agents[i].Spec.NodeName] = &agents[i]
	}
	var bad, unknown []string
	var badNodes []string
	for _, n := range nodes {
		a := agentOn[n]
		if a == nil || !kube.PodReady(a) {
			unknown = append(unknown, fmt.Sprintf("node %s: no ready CNI agent to check %d pod(s)", n, len(byNode[n])))
			continue
		}
		rep, err := kube.AgentPods(ctx, r.d.HTTP, a.Namespace, a.Name)
		if err != nil {
			unknown = append(unknown, fmt.Sprintf("node %s: %v", n, err))
			continue
		}
		nodeBad := false
		for _, p := range byNode[n] {
			who := fmt.Sprintf("%s/%s on %s", p.Namespace, p.Name, n)
			ap := rep.Find(p.Namespace, p.Name)
			switch {
			case ap == nil:
				bad = append(bad, who+": annotated enabled but the CNI agent does not hold it: its rules are not managed")
				nodeBad = true
			case ap.Rules.Error != "":
				unknown = append(unknown, who+": rule check failed: "+ap.Rules.Error)
			case !ap.Rules.InPlace:
				drift := ap.Rules.Drift
				more := ""
				if len(drift) > maxDriftLines {
					more = fmt.Sprintf(" (and %d more)", len(drift)-maxDriftLines)
					drift = drift[:maxDriftLines]
				}
				bad = append(bad, fmt.Sprintf("%s: redirect rules differ from the expected set: %s%s", who, strings.Join(drift, "; "), more))
				nodeBad = true
			}
		}
		if nodeBad {
			badNodes = append(badNodes, n)
		}
	}
	switch {
	case len(bad) > 0:
		return fail(desc, strings.Join(append(bad, unknown...), "\n"), fmt.Sprintf(
			"the pod's traffic bypasses or misses ztunnel while its rules are wrong; the CNI agent re-applies them within its rule check interval (default 30s) — if they drift again, something on the node rewrites the pod's iptables: see the pod's RedirectRulesRepaired events and `weftctl node diagnose %s`", badNodes[0]))
	case len(unknown) > 0:
		return warn(desc, strings.Join(unknown, "\n"), fmt.Sprintf(
			"the CNI agent reports rule checks on 127.0.0.1:%d%s: check it runs and is ready (`kubectl -n %s get pods -l %s -o wide`)", kube.AgentAdminPort, kube.AgentPodsPath, r.d.SystemNS, kube.AgentSelector))
	}
	return ok(desc)
}
