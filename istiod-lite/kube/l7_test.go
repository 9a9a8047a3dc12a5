package kube

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/istiod-lite/l7"
	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/pkg/api/l7api"
	netv1alpha3 "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

var _ L7Sink = (*l7.Controller)(nil)

func TestTransformKeepsWeftAnnotationsOnRoutes(t *testing.T) {
	in := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", Generation: 3, Annotations: map[string]string{
			l7.AnnotationFaultAbort: "5%:503", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec:   gatewayv1.HTTPRouteSpec{Hostnames: []gatewayv1.Hostname{"h"}},
		Status: gatewayv1.HTTPRouteStatus{RouteStatus: gatewayv1.RouteStatus{Parents: []gatewayv1.RouteParentStatus{{ControllerName: "x"}}}},
	}
	got, err := Transform(in)
	if err != nil {
		t.Fatal(err)
	}
	want := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "ns", Generation: 3, Annotations: map[string]string{l7.AnnotationFaultAbort: "5%:503"}},
		Spec:       gatewayv1.HTTPRouteSpec{Hostnames: []gatewayv1.Hostname{"h"}},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestWatchL7FeedsController(t *testing.T) {
	t.Setenv("KUBE_FEATURE_WatchListClient", "false")
	ctx, cancel := context.WithCancel(context.Background())
	kube := kubefake.NewSimpleClientset(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "demo"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	istio := istiofake.NewSimpleClientset(&networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "dr", Namespace: "demo"},
		Spec: netv1alpha3.DestinationRule{Host: "svc", TrafficPolicy: &netv1alpha3.TrafficPolicy{LoadBalancer: &netv1alpha3.LoadBalancerSettings{LbPolicy: &netv1alpha3.LoadBalancerSettings_Simple{Simple: netv1alpha3.LoadBalancerSettings_RANDOM}}}}})
	gw := gatewayfake.NewSimpleClientset()
	svcKind := gatewayv1.Kind("Service")
	port := gatewayv1.PortNumber(80)
	route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo"}, Spec: gatewayv1.HTTPRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Kind: &svcKind, Name: "svc"}}},
		Rules:           []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: "svc", Port: &port}}}}}}}}
	if _, err := gw.GatewayV1().HTTPRoutes("demo").Create(ctx, route, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	m := model.New(model.Config{}, slog.New(slog.DiscardHandler))
	c := l7.New(l7.Config{}, nil, nil)
	w, err := New(Clients{Kube: kube, Istio: istio, Gateway: gw}, m, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WatchL7(Clients{Kube: kube, Istio: istio, Gateway: gw}, c, false); err != nil {
		t.Fatal(err)
	}
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
		t.Fatal("not synced")
	}
	const host = "svc.demo.svc.cluster.local"
	if c.Get(l7api.RouteConfigType, host) == nil {
		t.Error("RouteConfig missing after sync")
	}
	if c.Get(l7api.TrafficPolicyType, host) == nil {
		t.Error("TrafficPolicy missing after sync")
	}
	grpc := &gatewayv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "demo"}, Spec: gatewayv1.GRPCRouteSpec{
		CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Kind: &svcKind, Name: "svc"}}},
		Rules:           []gatewayv1.GRPCRouteRule{{}}}}
	if _, err := gw.GatewayV1().GRPCRoutes("demo").Create(ctx, grpc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		r := c.Get(l7api.RouteConfigType, host)
		msg, err := r.Decode()
		return err == nil && len(msg.(*l7api.RouteConfig).Routes) == 2
	})
	if err := gw.GatewayV1().HTTPRoutes("demo").Delete(ctx, "r", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		r := c.Get(l7api.RouteConfigType, host)
		msg, err := r.Decode()
		return err == nil && len(msg.(*l7api.RouteConfig).Routes) == 1
	})
}
