package l7

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/pkg/api/l7api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPortProtocols(t *testing.T) {
	svc := service("svc",
		corev1.ServicePort{Name: "http-web", Port: 80},
		corev1.ServicePort{Name: "web", Port: 81, AppProtocol: ptr("http")},
		corev1.ServicePort{Name: "h2", Port: 82, AppProtocol: ptr("kubernetes.io/h2c")},
		corev1.ServicePort{Name: "grpc", Port: 83},
		corev1.ServicePort{Name: "tcp-db", Port: 84},
		corev1.ServicePort{Name: "http", Port: 85, AppProtocol: ptr("tcp")},
		corev1.ServicePort{Name: "metrics", Port: 86},
		corev1.ServicePort{Name: "http2", Port: 87, AppProtocol: ptr("custom")},
	)
	want := map[uint32]l7api.Protocol{80: l7api.Protocol_HTTP, 81: l7api.Protocol_HTTP, 82: l7api.Protocol_HTTP2, 83: l7api.Protocol_GRPC, 84: l7api.Protocol_TCP, 85: l7api.Protocol_TCP, 87: l7api.Protocol_HTTP2}
	if d := cmp.Diff(want, portProtocols(svc)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestRoutePrecedence(t *testing.T) {
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(name string, created time.Time, spec string) *routeSet {
		r := httpRoute(t, spec, nil)
		r.Name, r.CreationTimestamp = name, metav1.NewTime(created)
		var p problems
		rs := testCfg.translateHTTPRoute(r, &p)
		if p.fatal {
			t.Fatalf("%s: %v", name, fields(&p))
		}
		return rs
	}
	sets := []*routeSet{
		mk("young", old.Add(time.Hour), `{rules: [{matches: [{path: {value: /}}]}, {matches: [{path: {value: /api}}]}]}`),
		mk("old", old, `{rules: [
			{matches: [{path: {value: /api/v1}}]},
			{matches: [{path: {value: /api}, headers: [{name: a, value: b}]}]},
			{matches: [{path: {value: /api}, method: GET}]},
			{matches: [{path: {type: Exact, value: /api}}]},
			{matches: [{path: {type: RegularExpression, value: "/x.*"}}]},
			{matches: [{path: {value: /api}, headers: [{name: a, value: b}], queryParams: [{name: q, value: "1"}]}]}]}`),
		mk("ported", old.Add(2*time.Hour), `{parentRefs: [{kind: Service, name: svc, port: 80}], rules: [{matches: [{path: {value: /api}}]}]}`),
	}
	rc := testCfg.buildRouteConfig(service("svc"), sets)
	var got []string
	for _, r := range rc.Routes {
		got = append(got, r.Name)
	}
	want := []string{
		"HTTPRoute/demo/old/3",    // exact
		"HTTPRoute/demo/old/4",    // regex
		"HTTPRoute/demo/old/0",    // longest prefix
		"HTTPRoute/demo/old/2",    // /api + method
		"HTTPRoute/demo/old/5",    // /api + header + query
		"HTTPRoute/demo/old/1",    // /api + header
		"HTTPRoute/demo/ported/0", // /api on a port beats port-less
		"HTTPRoute/demo/young/1",  // /api, younger object
		"HTTPRoute/demo/young/0",  // /
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("order (-want +got):\n%s", d)
	}
	if rc.Routes[6].Port != 80 {
		t.Errorf("ported route port = %d", rc.Routes[6].Port)
	}
}
