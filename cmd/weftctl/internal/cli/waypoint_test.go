package cli

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestWaypointCommands(t *testing.T) {
	gwType := metav1.TypeMeta{APIVersion: "gateway.networking.k8s.io/v1", Kind: "Gateway"}
	prog := &gwv1.Gateway{
		TypeMeta:   gwType,
		ObjectMeta: metav1.ObjectMeta{Name: "waypoint", Namespace: "shop", Labels: map[string]string{"istio.io/waypoint-for": "all"}},
		Spec:       gwv1.GatewaySpec{GatewayClassName: "istio-waypoint"},
		Status: gwv1.GatewayStatus{
			Addresses:  []gwv1.GatewayStatusAddress{{Value: "10.96.0.99"}},
			Conditions: []metav1.Condition{{Type: "Programmed", Status: metav1.ConditionTrue, Reason: "Programmed", Message: "waypoint deployed"}},
		},
	}
	other := &gwv1.Gateway{TypeMeta: gwType, ObjectMeta: metav1.ObjectMeta{Name: "ingress", Namespace: "shop"}, Spec: gwv1.GatewaySpec{GatewayClassName: "nginx"}}
	objs := append(baseObjects(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}})
	h := newHarness(t, objs)
	for _, gw := range []*gwv1.Gateway{prog, other} {
		// Created, not preset: the fake tracker files preset Gateways under
		// another API version.
		if _, err := h.gw.GatewayV1().Gateways(gw.Namespace).Create(context.Background(), gw, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		args []string
		code int
	}{
		{"waypoint-generate", []string{"waypoint", "generate", "-n", "demo", "--for", "workload"}, 0},
		{"waypoint-generate-bad-for", []string{"waypoint", "generate", "-n", "demo", "--for", "pods"}, 1},
		{"waypoint-apply", []string{"waypoint", "apply", "-n", "demo", "--enroll-namespace"}, 0},
		{"waypoint-list-A", []string{"waypoint", "list", "-A"}, 0},
		{"waypoint-list-wide", []string{"waypoint", "list", "-n", "shop", "-o", "wide"}, 0},
		{"waypoint-status", []string{"waypoint", "status", "-n", "shop"}, 0},
		{"waypoint-status-pending", []string{"waypoint", "status", "-n", "demo"}, 0},
		{"waypoint-delete", []string{"waypoint", "delete", "waypoint", "-n", "demo"}, 0},
		{"waypoint-delete-missing", []string{"waypoint", "delete", "waypoint", "-n", "demo"}, 1},
	}
	for _, s := range steps {
		out, errOut, code := h.run(t, s.args...)
		if code != s.code {
			t.Fatalf("%s: exit %d, want %d: %s", s.name, code, s.code, errOut)
		}
		golden(t, s.name, []byte(out+errOut))
	}
	ns, _ := h.kube.CoreV1().Namespaces().Get(context.Background(), "demo", metav1.GetOptions{})
	if ns.Labels["istio.io/use-waypoint"] != "waypoint" {
		t.Errorf("namespace labels %v", ns.Labels)
	}
}

func TestCheckCommandExitCode(t *testing.T) {
	h := newHarness(t, baseObjects())
	out, _, code := h.run(t, "check", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d on a cluster without CRDs, want 1", code)
	}
	golden(t, "check-no-crds.json", []byte(out))
}
