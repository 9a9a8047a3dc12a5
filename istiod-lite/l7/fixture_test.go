package l7

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/pkg/api/l7api"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

var testCfg = Config{}.withDefaults()

// httpRoute builds HTTPRoute demo/r from a YAML spec, parented to Service
// svc unless the spec sets parentRefs.
func httpRoute(t *testing.T, spec string, ann map[string]string) *gatewayv1.HTTPRoute {
	t.Helper()
	r := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo", Annotations: ann}}
	if err := yaml.UnmarshalStrict([]byte(spec), &r.Spec); err != nil {
		t.Fatalf("route spec: %v", err)
	}
	if r.Spec.ParentRefs == nil {
		r.Spec.ParentRefs = []gatewayv1.ParentReference{{Kind: ptr(gatewayv1.Kind("Service")), Group: ptr(gatewayv1.Group("")), Name: "svc"}}
	}
	return r
}

func grpcRoute(t *testing.T, spec string) *gatewayv1.GRPCRoute {
	t.Helper()
	r := &gatewayv1.GRPCRoute{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "demo"}}
	if err := yaml.UnmarshalStrict([]byte(spec), &r.Spec); err != nil {
		t.Fatalf("route spec: %v", err)
	}
	if r.Spec.ParentRefs == nil {
		r.Spec.ParentRefs = []gatewayv1.ParentReference{{Kind: ptr(gatewayv1.Kind("Service")), Name: "svc"}}
	}
	return r
}

func authzPolicy(t *testing.T, name, spec string) *securityv1.AuthorizationPolicy {
	t.Helper()
	p := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}}
	if err := protojson.Unmarshal([]byte(spec), &p.Spec); err != nil {
		t.Fatalf("policy spec: %v", err)
	}
	return p
}

func destinationRule(t *testing.T, name, spec string) *networkingv1.DestinationRule {
	t.Helper()
	d := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}}
	if err := protojson.Unmarshal([]byte(spec), &d.Spec); err != nil {
		t.Fatalf("destination rule spec: %v", err)
	}
	return d
}

func service(name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "demo"}, Spec: corev1.ServiceSpec{Ports: ports}}
}

// msg parses the protojson form of an expected message.
func msg[M proto.Message](t *testing.T, js string, m M) M {
	t.Helper()
	if err := protojson.Unmarshal([]byte(js), m); err != nil {
		t.Fatalf("expected %T: %v", m, err)
	}
	return m
}

// routes parses `{"routes":[...]}`.
func routes(t *testing.T, js string) []*l7api.Route {
	t.Helper()
	return msg(t, js, &l7api.RouteConfig{}).Routes
}

func diff(want, got any) string { return cmp.Diff(want, got, protocmp.Transform()) }

// fields lists the problem fields, "!" prefixed when fatal.
func fields(p *problems) []string {
	var out []string
	for _, e := range p.list {
		out = append(out, e.Field)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
