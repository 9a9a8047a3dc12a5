package cli

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExplainCommand(t *testing.T) {
	objs := append(baseObjects(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"istio.io/dataplane-mode": "ambient"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Labels: map[string]string{"istio.io/dataplane-mode": "ambinet"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "client-7d9f", Namespace: "demo", Annotations: map[string]string{"ambient.istio.io/redirection": "enabled"}},
			Spec: corev1.PodSpec{NodeName: "node-a"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "old-0", Namespace: "legacy"}, Spec: corev1.PodSpec{NodeName: "node-b"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
	)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"explain-allowed", []string{"x", "explain", "client-7d9f", "-n", "demo", "echo.demo:80"}},
		{"explain-denied-unenrolled", []string{"x", "explain", "legacy/old-0", "demo/echo-1:8080"}},
		{"explain-json", []string{"x", "explain", "client-7d9f.demo", "10.244.1.6:8080", "-o", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, objs)
			out, errOut, code := h.run(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			golden(t, tc.name, []byte(out))
		})
	}
}

func TestNodeDiagnoseCommand(t *testing.T) {
	objs := append(baseObjects(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"istio.io/dataplane-mode": "ambient"}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "client-7d9f", Namespace: "demo", Annotations: map[string]string{"ambient.istio.io/redirection": "enabled"}},
			Spec: corev1.PodSpec{NodeName: "node-a"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "echo-1", Namespace: "demo", Annotations: map[string]string{"ambient.istio.io/redirection": "enabled"}},
			Spec: corev1.PodSpec{NodeName: "node-a"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "far-0", Namespace: "demo"}, Spec: corev1.PodSpec{NodeName: "node-b"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}},
	)
	h := newHarness(t, objs)
	h.http.bodies["ztunnel-aaaa:15020/metrics"] = []byte("istio_tcp_connections_failed_total{response_flags=\"DENY\"} 3\n")
	out, errOut, code := h.run(t, "node", "diagnose", "node-a")
	if code != 1 { // the fixture's echo identity has no certificate
		t.Fatalf("exit %d: %s", code, errOut)
	}
	golden(t, "node-diagnose", []byte(out))
	_, errOut, code = h.run(t, "node", "diagnose", "node-x")
	if code != 1 || !strings.Contains(errOut, `node "node-x" not found; nodes are: node-a, node-b`) {
		t.Fatalf("unknown node: exit %d: %s", code, errOut)
	}
}
