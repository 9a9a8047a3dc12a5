package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestFindZtunnel(t *testing.T) {
	zt := func(name, node string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "weft-system", Labels: map[string]string{"app": "ztunnel"}},
			Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
	}
	kc := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-c"}},
		zt("ztunnel-aaaa", "node-a", corev1.PodPending), zt("ztunnel-bbbb", "node-b", corev1.PodRunning))
	for _, tc := range []struct {
		name, node, pod string
		want, err       string
	}{
		{name: "by node", node: "node-a", want: "ztunnel-aaaa"},
		{name: "by pod", pod: "ztunnel-bbbb", want: "ztunnel-bbbb"},
		{name: "by pod.namespace", pod: "ztunnel-bbbb.weft-system", want: "ztunnel-bbbb"},
		{name: "first running", want: "ztunnel-bbbb"},
		{name: "unknown node", node: "node-x", err: `node "node-x" not found; nodes are: node-a, node-b, node-c`},
		{name: "node without ztunnel", node: "node-c", err: "no ztunnel pod on node node-c"},
		{name: "unknown pod", pod: "ztunnel-zzzz", err: `ztunnel pod "ztunnel-zzzz" not found in namespace weft-system`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := FindZtunnel(context.Background(), kc, "weft-system", tc.node, tc.pod)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || p.Name != tc.want {
				t.Fatalf("got %v, %v; want %s", p, err, tc.want)
			}
		})
	}
	if _, err := FindZtunnel(context.Background(), fake.NewClientset(), "weft-system", "", ""); err == nil || !strings.Contains(err.Error(), "is Weft installed") {
		t.Fatalf("empty cluster: %v", err)
	}
}
