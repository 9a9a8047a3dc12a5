package nodeagent

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cni/agentapi"
)

// TestEnrollPrefersCNINetns checks that a pod started outside the mesh and
// enrolled later (its namespace labelled) is captured in the namespace its
// CNI ADD named, not one found by scanning the node, and that a path
// forgotten by DEL or no longer holding the pod's IP falls back to the
// scan.
func TestEnrollPrefersCNINetns(t *testing.T) {
	pending := func(name, uid string) *corev1.Pod {
		p := runningPod("plain", name, uid, "")
		p.Status = corev1.PodStatus{Phase: corev1.PodPending}
		return p
	}
	h := newHarness(t, namespace("plain", false), pending("web", "uid-web"), pending("db", "uid-db"))
	h.net.pathIP["/var/run/netns/web"] = "10.244.1.5"
	h.net.pathIP["/var/run/netns/db"] = "10.244.1.6"
	h.start()
	c := agentapi.NewClient(h.cfg.CNISocket)
	ctx := context.Background()
	for _, p := range []struct{ name, ip string }{{"web", "10.244.1.5"}, {"db", "10.244.1.6"}} {
		resp, err := c.Add(ctx, agentapi.PodRequest{ContainerID: "c-" + p.name, Netns: "/var/run/netns/" + p.name, IfName: "eth0", PodName: p.name, PodNamespace: "plain", IPs: []string{p.ip}})
		if err != nil || resp.Enrolled {
			t.Fatalf("Add(%s) = %+v, %v", p.name, resp, err)
		}
		h.net.mu.Lock()
		h.net.running[p.ip] = true
		h.net.mu.Unlock()
	}
	// A DEL of an older sandbox of web keeps web's path; db's own DEL
	// forgets db's.
	if err := c.Del(ctx, agentapi.PodRequest{ContainerID: "c-old", PodName: "web", PodNamespace: "plain"}); err != nil {
		t.Fatal(err)
	}
	if got := h.agent.paths.get("plain", "web", "uid-web"); got != "/var/run/netns/web" {
		t.Fatalf("web's path after an old sandbox's DEL = %q", got)
	}
	h.agent.paths.forget("plain", "db", "c-db")
	for _, p := range []struct{ name, uid, ip string }{{"web", "uid-web", "10.244.1.5"}, {"db", "uid-db", "10.244.1.6"}} {
		cur := h.pod("plain", p.name)
		cur.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}}}
		if _, err := h.kube.CoreV1().Pods("plain").UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	h.net.mu.Lock()
	h.net.finds = 0
	h.net.mu.Unlock()
	if _, err := h.kube.CoreV1().Namespaces().Update(ctx, namespace("plain", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "db"} {
		h.eventually(name+" annotated", func() bool {
			return h.pod("plain", name).Annotations[AnnotationRedirection] == RedirectionEnabled
		})
	}
	h.net.mu.Lock()
	finds := h.net.finds
	h.net.mu.Unlock()
	if finds != 1 {
		t.Errorf("node scans = %d, want 1 (db, whose path was forgotten; web uses its CNI path)", finds)
	}
	if h.net.dump("10.244.1.5") == "" || h.net.dump("10.244.1.6") == "" {
		t.Fatal("a pod was not captured")
	}
}
