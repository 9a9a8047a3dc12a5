package l7

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// benchController holds n Services with one HTTPRoute each.
func benchController(b *testing.B, n int) (*Controller, []*gatewayv1.HTTPRoute) {
	b.Helper()
	c := New(Config{}, nil, nil)
	routes := make([]*gatewayv1.HTTPRoute, n)
	for i := range n {
		name := fmt.Sprintf("svc-%d", i)
		c.UpsertService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
		port := gatewayv1.PortNumber(80)
		kind := gatewayv1.Kind("Service")
		routes[i] = &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo", Annotations: map[string]string{AnnotationRetryAttempts: "2"}},
			Spec: gatewayv1.HTTPRouteSpec{CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Kind: &kind, Name: gatewayv1.ObjectName(name)}}},
				Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: &port}}}}}}}}
		c.UpsertHTTPRoute(routes[i])
	}
	return c, routes
}

// BenchmarkRouteChange measures one HTTPRoute change among 1,000 routed
// Services (incremental: one RouteConfig rebuilt) beside the baseline of
// rebuilding every RouteConfig, and reports the ratio.
func BenchmarkRouteChange(b *testing.B) {
	const n = 1000
	var incremental, full float64
	b.Run("incremental", func(b *testing.B) {
		c, routes := benchController(b, n)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			r := routes[i%n].DeepCopy()
			r.Generation = int64(i + 1)
			r.Annotations = map[string]string{AnnotationRetryAttempts: fmt.Sprint(i%5 + 1)}
			c.UpsertHTTPRoute(r)
		}
		incremental = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("full-rebuild-baseline", func(b *testing.B) {
		c, _ := benchController(b, n)
		b.ResetTimer()
		for b.Loop() {
			c.mu.Lock()
			for k := range c.services {
				c.recomputeRouteConfig(k)
			}
			clear(c.changed)
			c.mu.Unlock()
		}
		full = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if incremental > 0 {
			b.ReportMetric(full/incremental, "x-incremental")
		}
	})
}
