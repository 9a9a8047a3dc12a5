//go:build e2e

package mesh_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/e2e/lab"
)

// inPodLeftovers lists what of the in-pod rule set (WEFT_* chains,
// redirects, the fwmark ip rule, the table-100 route) is present in pod's
// network namespace.
func (e *meshEnv) inPodLeftovers(ctx context.Context, p corev1.Pod) ([]string, error) {
	out, err := e.exec(ctx, p.Namespace, p.Name, "bash", "-c",
		"iptables-save -t nat && iptables-save -t mangle && echo '# ip rule' && ip rule && echo '# table 100' && ip route show table all | { grep -w 'table 100' || true; }")
	if err != nil {
		return nil, err
	}
	var found []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		if strings.Contains(l, "WEFT_") || strings.Contains(l, "REDIRECT") || strings.Contains(l, "TPROXY") ||
			strings.Contains(l, "fwmark 0x111/0xfff") || strings.Contains(l, "lookup 100") || strings.Contains(l, "table 100") {
			found = append(found, l)
		}
	}
	if !strings.Contains(out, "# table 100") {
		return nil, fmt.Errorf("incomplete output from %s: %q", p.Name, out)
	}
	return found, nil
}

// agentOn returns the node agent pod of node (host network: exec reaches
// the node's network namespace).
func (e *meshEnv) agentOn(ctx context.Context, t *testing.T, node string) corev1.Pod {
	t.Helper()
	for _, a := range e.readyPods(ctx, t, "weft-system", "app=weft-cni-agent", 2) {
		if a.Spec.NodeName == node {
			return a
		}
	}
	t.Fatalf("no node agent on %s", node)
	return corev1.Pod{}
}

// probeRule reports whether node's nat table holds the probe SNAT rule of
// the pod with uid.
func (e *meshEnv) probeRule(ctx context.Context, t *testing.T, node, uid string) (bool, error) {
	t.Helper()
	a := e.agentOn(ctx, t, node)
	out, err := e.exec(ctx, a.Namespace, a.Name, "iptables-save", "-t", "nat")
	if err != nil {
		return false, err
	}
	if !strings.Contains(out, "*nat") {
		return false, fmt.Errorf("no nat table in iptables-save of %s: %q", node, out)
	}
	return strings.Contains(out, "weft-probe:"+uid), nil
}

// enrolledGauge reads weft_cni_pods_enrolled from node's agent.
func (e *meshEnv) enrolledGauge(ctx context.Context, t *testing.T, node string) float64 {
	t.Helper()
	a := e.agentOn(ctx, t, node)
	out, err := e.exec(ctx, a.Namespace, a.Name, "curl", "-sf", "--max-time", "5", "http://127.0.0.1:15014/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "weft_cni_pods_enrolled" {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("weft_cni_pods_enrolled %q: %v", f[1], err)
			}
			return v
		}
	}
	t.Fatalf("no weft_cni_pods_enrolled in %s's agent metrics", node)
	return 0
}

// workloadUIDs are the pod UIDs in a ztunnel's config_dump workloadState.
func (e *meshEnv) workloadUIDs(ctx context.Context, t *testing.T, z corev1.Pod) map[string]bool {
	t.Helper()
	var d struct {
		WorkloadState []struct {
			UID string `json:"uid"`
		} `json:"workloadState"`
	}
	if err := json.Unmarshal([]byte(e.ztunnelGet(ctx, t, z, 15000, "/config_dump")), &d); err != nil {
		t.Fatalf("config_dump of %s: %v", z.Name, err)
	}
	uids := map[string]bool{}
	for _, w := range d.WorkloadState {
		uids[w.UID] = true
	}
	return uids
}

// enrolledOn lists the running pods of ns on node marked enrolled.
func (e *meshEnv) enrolledOn(ctx context.Context, t *testing.T, ns, node string) []corev1.Pod {
	t.Helper()
	list, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil && p.Spec.NodeName == node && p.Annotations[redirectionAnnot] == "enabled" {
			pods = append(pods, p)
		}
	}
	return pods
}

// TestUnlabelRemovesRules: unlabelling the namespace removes every in-pod
// rule, the redirection annotation and the node's probe SNAT rule of each
// pod.
func TestUnlabelRemovesRules(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	pods := append(e.readyPods(ctx, t, "demo", "app=client", 1), e.readyPods(ctx, t, "demo", "app=echo", 2)...)
	for _, p := range pods {
		eventually(ctx, t, 10*time.Second, p.Name+": in-pod rules and probe SNAT present while enrolled", func() error {
			left, err := e.inPodLeftovers(ctx, p)
			if err != nil {
				return err
			}
			if len(left) < 4 {
				return fmt.Errorf("in-pod rules of %s: found only %q", p.Name, left)
			}
			if ok, err := e.probeRule(ctx, t, p.Spec.NodeName, string(p.UID)); err != nil || !ok {
				return fmt.Errorf("no probe SNAT rule weft-probe:%s on %s (%v)", p.UID, p.Spec.NodeName, err)
			}
			return nil
		})
	}

	e.labelNamespace(ctx, t, "demo", "")
	for _, p := range pods {
		eventually(ctx, t, 10*time.Second, p.Name+": in-pod rules, annotation and probe SNAT gone", func() error {
			left, err := e.inPodLeftovers(ctx, p)
			if err != nil {
				return err
			}
			if len(left) > 0 {
				return fmt.Errorf("left in %s's netns:\n%s", p.Name, strings.Join(left, "\n"))
			}
			cur, err := e.cs.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if a, ok := cur.Annotations[redirectionAnnot]; ok {
				return fmt.Errorf("%s still annotated %s=%q", p.Name, redirectionAnnot, a)
			}
			if ok, err := e.probeRule(ctx, t, p.Spec.NodeName, string(p.UID)); err != nil || ok {
				return fmt.Errorf("probe SNAT rule weft-probe:%s still on %s (%v)", p.UID, p.Spec.NodeName, err)
			}
			return nil
		})
	}
}

// TestDeletedPodLeavesNothing: deleting an enrolled pod removes its netns,
// its probe SNAT rule, its count in the agent's gauge and its entry in
// ztunnel's workload state.
func TestDeletedPodLeavesNothing(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	_, server := e.clientAndServer(ctx, t)
	node := server.Spec.NodeName
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	gauge0 := e.enrolledGauge(ctx, t, node)

	p := e.startPod(ctx, t, "demo", "doomed", "doomed", node, nil)
	uid := string(p.UID)
	nsPath, err := lab.PodNetns(ctx, e.cs, e.c.Plan.Name, p.Namespace, p.Name)
	if err != nil {
		t.Fatal(err)
	}
	z := e.ztunnelOn(ctx, t, node)
	eventually(ctx, t, 10*time.Second, "doomed enrolled everywhere", func() error {
		if g := e.enrolledGauge(ctx, t, node); g != gauge0+1 {
			return fmt.Errorf("weft_cni_pods_enrolled %v, want %v", g, gauge0+1)
		}
		if ok, err := e.probeRule(ctx, t, node, uid); err != nil || !ok {
			return fmt.Errorf("no probe SNAT rule weft-probe:%s (%v)", uid, err)
		}
		if !e.workloadUIDs(ctx, t, z)[uid] {
			return fmt.Errorf("%s not in %s's workloadState", uid, z.Name)
		}
		return nil
	})

	start := time.Now()
	if _, err := e.kubectl(ctx, nil, "-n", "demo", "delete", "pod", p.Name, "--wait=true", "--timeout=90s"); err != nil {
		t.Fatal(err)
	}
	t.Logf("pod deleted in %s", time.Since(start).Round(10*time.Millisecond))
	eventually(ctx, t, 30*time.Second, "nothing of doomed left", func() error {
		if _, err := os.Stat(nsPath); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("netns %s still there (%v)", nsPath, err)
		}
		if ok, err := e.probeRule(ctx, t, node, uid); err != nil || ok {
			return fmt.Errorf("probe SNAT rule weft-probe:%s still on %s (%v)", uid, node, err)
		}
		if g := e.enrolledGauge(ctx, t, node); g != gauge0 {
			return fmt.Errorf("weft_cni_pods_enrolled %v, want %v", g, gauge0)
		}
		if e.workloadUIDs(ctx, t, z)[uid] {
			return fmt.Errorf("%s still in %s's workloadState", uid, z.Name)
		}
		return nil
	})
}

// TestZtunnelRestartRecreatesListeners: after ztunnel is killed on a node
// (SIGKILL after a 1 s grace period; the delete returns once the kubelet
// has stopped it, so the old process no longer holds any listener),
// its replacement gets every enrolled pod there back from the agent's
// snapshot, and traffic to them is mTLS again.
func TestZtunnelRestartRecreatesListeners(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	node := server.Spec.NodeName
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	pods := e.enrolledOn(ctx, t, "demo", node)
	if len(pods) == 0 {
		t.Fatalf("no enrolled demo pod on %s", node)
	}
	old := e.ztunnelOn(ctx, t, node)
	eventually(ctx, t, 10*time.Second, "enrolled pods in the old ztunnel's workloadState", func() error {
		return missing(e.workloadUIDs(ctx, t, old), pods)
	})

	start := time.Now()
	if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "delete", "pod", old.Name, "--grace-period=1", "--wait=true", "--timeout=90s"); err != nil {
		t.Fatal(err)
	}
	var z corev1.Pod
	eventually(ctx, t, 2*time.Minute, "replacement ztunnel ready on "+node, func() error {
		list, err := e.cs.CoreV1().Pods("weft-system").List(ctx, metav1.ListOptions{LabelSelector: "app=ztunnel"})
		if err != nil {
			return err
		}
		for _, p := range list.Items {
			if p.Spec.NodeName == node && p.UID != old.UID && p.DeletionTimestamp == nil && podReady(&p) {
				z = p
				return nil
			}
		}
		return fmt.Errorf("no new ready ztunnel on %s", node)
	})
	eventually(ctx, t, 30*time.Second, "every enrolled pod back in "+z.Name+"'s workloadState", func() error {
		return missing(e.workloadUIDs(ctx, t, z), pods)
	})
	t.Logf("ztunnel killed and every pod's listeners back after %s", time.Since(start).Round(10*time.Millisecond))

	principal := "spiffe://cluster.local/ns/demo/sa/client"
	eventually(ctx, t, 30*time.Second, "a call to "+server.Name+" counted as mTLS by "+z.Name, func() error {
		before := e.opened(ctx, t, z, mtlsFrom(principal)...)
		if _, err := e.call(ctx, client, "--url", httpURL(server, "/after-kill")); err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		if after := e.opened(ctx, t, z, mtlsFrom(principal)...); after <= before {
			return fmt.Errorf("mTLS opened from %s: %v -> %v", principal, before, after)
		}
		return nil
	})
}

// missing reports the pods whose UID is not in uids.
func missing(uids map[string]bool, pods []corev1.Pod) error {
	var miss []string
	for _, p := range pods {
		if !uids[string(p.UID)] {
			miss = append(miss, p.Name)
		}
	}
	if len(miss) > 0 {
		return fmt.Errorf("not in workloadState: %s", strings.Join(miss, ", "))
	}
	return nil
}
