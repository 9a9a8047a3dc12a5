package l7

import (
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/pkg/api/l7api"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

type recorder struct {
	mu      sync.Mutex
	changes map[string][]string
	reports []Report
}

func (r *recorder) onChange(c model.Changes) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for t, ns := range c.Other {
		r.changes[t] = append(r.changes[t], ns...)
	}
}

func (r *recorder) Report(rep Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, rep)
}

// take returns and clears the changed names, sorted per type.
func (r *recorder) take() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.changes
	for _, ns := range out {
		slices.Sort(ns)
	}
	r.changes = map[string][]string{}
	return out
}

func (r *recorder) takeReports() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reports
	r.reports = nil
	return out
}

func newTestController() (*Controller, *recorder) {
	rec := &recorder{changes: map[string][]string{}}
	c := New(Config{}, nil, rec)
	c.OnChange(rec.onChange)
	return c, rec
}

func decode[M interface {
	*l7api.RouteConfig | *l7api.L7Policy | *l7api.TrafficPolicy
}](t *testing.T, r *model.Resource) M {
	t.Helper()
	if r == nil {
		t.Fatal("resource missing")
	}
	m, err := r.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return m.(M)
}

func TestControllerRoutesIncrementally(t *testing.T) {
	c, rec := newTestController()
	const svcHost, otherHost = "svc.demo.svc.cluster.local", "other.demo.svc.cluster.local"
	c.UpsertService(service("svc", corev1.ServicePort{Name: "http", Port: 80}))
	c.UpsertService(service("other"))
	if d := cmp.Diff(map[string][]string{l7api.RouteConfigType: {svcHost}}, rec.take()); d != "" {
		t.Errorf("a Service with a declared protocol has a RouteConfig; one without none (-want +got):\n%s", d)
	}

	r := httpRoute(t, `{rules: [{backendRefs: [{name: v1, port: 80}]}]}`, nil)
	c.UpsertHTTPRoute(r)
	if d := cmp.Diff(map[string][]string{l7api.RouteConfigType: {svcHost}}, rec.take()); d != "" {
		t.Errorf("route change (-want +got):\n%s", d)
	}
	rc := decode[*l7api.RouteConfig](t, c.Get(l7api.RouteConfigType, svcHost))
	if len(rc.Routes) != 1 || rc.PortProtocols[80] != l7api.Protocol_HTTP {
		t.Errorf("route config = %v", rc)
	}

	// Same content: no change, no push.
	c.UpsertHTTPRoute(r.DeepCopy())
	if got := rec.take(); len(got) != 0 {
		t.Errorf("unchanged route pushed %v", got)
	}

	// Move the route to the other Service: both change, nothing else.
	moved := r.DeepCopy()
	moved.Spec.ParentRefs[0].Name = "other"
	before := c.recomputes
	c.UpsertHTTPRoute(moved)
	if d := cmp.Diff(map[string][]string{l7api.RouteConfigType: {otherHost, svcHost}}, rec.take()); d != "" {
		t.Errorf("moved route (-want +got):\n%s", d)
	}
	if n := c.recomputes - before; n != 2 {
		t.Errorf("recomputed %d resources, want 2", n)
	}

	// A GRPCRoute on the same Service adds to its RouteConfig.
	c.UpsertGRPCRoute(grpcRoute(t, `{parentRefs: [{kind: Service, name: other}], rules: [{matches: [{method: {service: a.B, method: C}}], backendRefs: [{name: v1, port: 9000}]}]}`))
	rc = decode[*l7api.RouteConfig](t, c.Get(l7api.RouteConfigType, otherHost))
	if len(rc.Routes) != 2 || rc.Routes[0].Name != "GRPCRoute/demo/g/0" {
		t.Errorf("exact gRPC path should sort first: %v", rc.Routes)
	}
	rec.take()
	// Valid routes are reported once per generation, for their status.
	reps := rec.takeReports()
	if len(reps) != 2 || len(reps[0].Problems) != 0 || len(reps[0].Parents) != 1 || reps[1].Ref.Kind != "GRPCRoute" {
		t.Errorf("reports of valid routes = %+v", reps)
	}

	// A broken update withdraws the route and reports the field; others
	// are untouched.
	broken := moved.DeepCopy()
	broken.Spec.Rules[0].BackendRefs[0].Port = nil
	c.UpsertHTTPRoute(broken)
	rc = decode[*l7api.RouteConfig](t, c.Get(l7api.RouteConfigType, otherHost))
	if len(rc.Routes) != 1 {
		t.Errorf("broken route still served: %v", rc.Routes)
	}
	reps = rec.takeReports()
	if len(reps) != 1 || !reps[0].Rejected || reps[0].Ref.String() != "HTTPRoute/demo/r" || reps[0].Problems[0].Field != "spec.rules[0].backendRefs[0].port" {
		t.Fatalf("reports = %+v", reps)
	}
	// Reported once, not on every resync of the same object.
	c.UpsertHTTPRoute(broken.DeepCopy())
	if reps := rec.takeReports(); len(reps) != 0 {
		t.Errorf("repeated report %+v", reps)
	}
	// Fixed: a clearing report.
	c.UpsertHTTPRoute(moved)
	if reps := rec.takeReports(); len(reps) != 1 || len(reps[0].Problems) != 0 {
		t.Errorf("clearing report = %+v", reps)
	}

	// Deleting the Service removes its RouteConfig; deleting the routes
	// leaves no config for a Service without protocols.
	c.DeleteService("demo", "svc")
	if c.Get(l7api.RouteConfigType, svcHost) != nil {
		t.Error("RouteConfig of a deleted Service")
	}
	c.DeleteHTTPRoute("demo", "r")
	c.DeleteGRPCRoute("demo", "g")
	if c.Get(l7api.RouteConfigType, otherHost) != nil {
		t.Error("RouteConfig without routes or protocols")
	}
}

func TestControllerPoliciesFollowGateways(t *testing.T) {
	c, rec := newTestController()
	c.UpsertAuthorizationPolicy(authzPolicy(t, "l4", `{"selector":{"matchLabels":{"a":"b"}}}`))
	c.UpsertAuthorizationPolicy(authzPolicy(t, "deny-delete", `{"action":"DENY","targetRefs":[{"kind":"Gateway","group":"gateway.networking.k8s.io","name":"waypoint"}],"rules":[{"to":[{"operation":{"methods":["DELETE"]}}]}]}`))
	if got := rec.take(); len(got) != 0 || len(c.All(l7api.L7PolicyType)) != 0 {
		t.Errorf("L4 policy, or a policy for an unknown Gateway, served: %v", got)
	}
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "waypoint", Namespace: "demo"}, Spec: gatewayv1.GatewaySpec{GatewayClassName: WaypointGatewayClass}}
	c.UpsertGateway(gw)
	if d := cmp.Diff(map[string][]string{l7api.L7PolicyType: {"demo/deny-delete"}}, rec.take()); d != "" {
		t.Errorf("gateway appears (-want +got):\n%s", d)
	}
	p := decode[*l7api.L7Policy](t, c.Get(l7api.L7PolicyType, "demo/deny-delete"))
	if p.Action != l7api.Action_DENY || len(p.Targets) != 1 {
		t.Errorf("policy = %v", p)
	}
	c.UpsertGateway(gw.DeepCopy()) // status-only updates change nothing
	if got := rec.take(); len(got) != 0 {
		t.Errorf("unchanged gateway pushed %v", got)
	}
	// The policy loses its targetRefs: it becomes L4 and leaves.
	c.UpsertAuthorizationPolicy(authzPolicy(t, "deny-delete", `{"action":"DENY"}`))
	if d := cmp.Diff(map[string][]string{l7api.L7PolicyType: {"demo/deny-delete"}}, rec.take()); d != "" {
		t.Errorf("policy becomes L4 (-want +got):\n%s", d)
	}
	if c.Get(l7api.L7PolicyType, "demo/deny-delete") != nil {
		t.Error("L4 policy still served")
	}
	c.UpsertAuthorizationPolicy(authzPolicy(t, "svc", `{"targetRefs":[{"kind":"Service","name":"s"}]}`))
	c.DeleteAuthorizationPolicy("demo", "svc")
	if c.Get(l7api.L7PolicyType, "demo/svc") != nil {
		t.Error("deleted policy served")
	}
}

func TestControllerTrafficPolicies(t *testing.T) {
	c, rec := newTestController()
	const host = "reviews.demo.svc.cluster.local"
	young := destinationRule(t, "young", `{"host":"reviews","trafficPolicy":{"loadBalancer":{"simple":"RANDOM"}}}`)
	young.CreationTimestamp = metav1.Unix(200, 0)
	old := destinationRule(t, "old", `{"host":"reviews.demo.svc.cluster.local","trafficPolicy":{"loadBalancer":{"simple":"ROUND_ROBIN"}}}`)
	old.CreationTimestamp = metav1.Unix(100, 0)
	c.UpsertDestinationRule(young)
	c.UpsertDestinationRule(old)
	tp := decode[*l7api.TrafficPolicy](t, c.Get(l7api.TrafficPolicyType, host))
	if tp.LoadBalancer.GetPolicy() != l7api.LoadBalancer_ROUND_ROBIN {
		t.Errorf("the oldest DestinationRule should win: %v", tp)
	}
	rec.take()
	c.DeleteDestinationRule("demo", "old")
	tp = decode[*l7api.TrafficPolicy](t, c.Get(l7api.TrafficPolicyType, host))
	if tp.LoadBalancer.GetPolicy() != l7api.LoadBalancer_RANDOM {
		t.Errorf("after deleting the oldest: %v", tp)
	}
	rec.take()
	// An invalid update withdraws it and reports.
	bad := young.DeepCopy()
	bad.Spec.Host = "*.example.com"
	c.UpsertDestinationRule(bad)
	if c.Get(l7api.TrafficPolicyType, host) != nil {
		t.Error("invalid DestinationRule still served")
	}
	if reps := rec.takeReports(); len(reps) != 1 || reps[0].Problems[0].Field != "spec.host" {
		t.Errorf("reports = %+v", reps)
	}
	if d := cmp.Diff(map[string][]string{l7api.TrafficPolicyType: {host}}, rec.take()); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
}
