package kube

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/weftmesh/weft/istiod-lite/model"
	secv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

var _ Sink = (*model.Model)(nil)

func TestWatcherFeedsModel(t *testing.T) {
	// Istio's fake clientset cannot serve watch-list streams.
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	ctrl := true
	kube := kubefake.NewSimpleClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{model.LabelDataplaneMode: model.DataplaneModeAmbient}}},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "demo", OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "a-1", Controller: &ctrl}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
		},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: "demo"}, Spec: corev1.ServiceSpec{ClusterIPs: []string{"10.96.0.3"}, Ports: []corev1.ServicePort{{Name: "p", Port: 80}}}},
		&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "manual-1", Namespace: "demo", Labels: map[string]string{discoveryv1.LabelServiceName: "manual"}},
			Ports: []discoveryv1.EndpointPort{{Name: ptr("p"), Port: ptr(int32(8080))}}, Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"192.168.0.9"}}}},
	)
	istio := istiofake.NewSimpleClientset(&securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: "demo"}, Spec: secv1beta1.AuthorizationPolicy{Action: secv1beta1.AuthorizationPolicy_DENY}})
	// The Gateway API fake does not list objects passed to its
	// constructor, so create it through the client.
	gw := gatewayfake.NewSimpleClientset()
	if _, err := gw.GatewayV1().Gateways("demo").Create(context.Background(), &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "wp", Namespace: "demo"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: model.WaypointGatewayClass}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	m := model.New(model.Config{}, slog.New(slog.DiscardHandler))
	w, err := New(Clients{Kube: kube, Istio: istio, Gateway: gw}, m, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watcher Run: %v", err)
		}
	}()

	select {
	case <-w.SyncedAt():
	case <-time.After(10 * time.Second):
		for i, s := range w.synced {
			t.Log(i, s())
		}
		t.Fatal("not synced")
	}
	if !w.HasSynced() {
		t.Fatal("HasSynced false after SyncedAt")
	}
	if m.Get(model.AddressType, "Kubernetes//Pod/demo/a") == nil {
		t.Error("pod missing")
	}
	if m.Get(model.AddressType, "/192.168.0.9") == nil {
		t.Error("endpoint-slice workload missing")
	}
	if m.Get(model.AuthorizationType, "demo/deny") == nil {
		t.Error("authorization missing")
	}
	if got := m.Sizes()["gateways"]; got != 1 {
		t.Errorf("gateways = %d", got)
	}

	// Later changes flow through.
	if _, err := kube.CoreV1().Pods("demo").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "demo"}, Status: corev1.PodStatus{PodIP: "10.0.0.2"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return m.Get(model.AddressType, "/10.0.0.2") != nil })
	if err := kube.CoreV1().Pods("demo").Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return m.Get(model.AddressType, "/10.0.0.1") == nil })
}

func eventually(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }
