package bench

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/e2e/lab"
	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/istiod-lite/xds"
)

func TestQuantile(t *testing.T) {
	vs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	tests := []struct {
		q    float64
		want float64
	}{{0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}, {0, 1}, {0.1, 1}, {0.11, 2}}
	for _, tc := range tests {
		if got := quantile(vs, tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if !math.IsNaN(quantile(nil, 0.5)) {
		t.Error("quantile of nothing must be NaN")
	}
	if vs[0] != 5 {
		t.Error("quantile sorted its input")
	}
}

func TestDistRow(t *testing.T) {
	// Three blocks: 1..4, 5..8, 9..12 (a NaN, a failed change, left out).
	subj := []float64{1, 2, 3, 4, 5, 6, math.NaN(), 7, 8, 9, 10, 11, 12}
	r := distRow("control-plane", "k", "p50", "ms", noBaseline, nil, "istiod-lite", subj, 0.5)
	if r.Subject.Median != 6 || !cmp.Equal(r.Subject.Values, []float64{2, 6, 10}) || r.Subject.Spread != 8 {
		t.Errorf("subject = %+v; want 6 over all, blocks [2 6 10], spread 8", r.Subject)
	}
	if !math.IsNaN(r.Ratio) || len(r.Baseline.Values) != 0 {
		t.Errorf("a row without a baseline has ratio %v, baseline %+v", r.Ratio, r.Baseline)
	}
	r = distRow("control-plane", "k", "max", "ms", "at rest", []float64{1, 2, 3}, "under churn", []float64{2, 4, 6}, 1)
	if r.Ratio != 2 || r.Delta != 3 || r.Spread.Baseline != 2 || !cmp.Equal(r.Baseline.Values, []float64{1, 2, 3}) {
		t.Errorf("row = %+v; want ratio 2, delta 3, per-block maxima", r)
	}
	if r := distRow("s", "k", "m", "ms", "b", []float64{4}, "s", []float64{2}, 0.5); r.Ratio != 0.5 || r.Subject.Spread != 0 {
		t.Errorf("fewer samples than blocks: %+v", r)
	}
	// The JSON carries no NaN.
	rep := &Report{Rows: []Row{distRow("s", "k", "m", "ms", noBaseline, nil, "s", nil, 0.5)}}
	if _, err := json.Marshal(sanitize(rep)); err != nil {
		t.Errorf("a row with no samples does not encode: %v", err)
	}
}

func TestAckState(t *testing.T) {
	const a, b = "Kubernetes//Pod/bench-cp/probe-0", "Kubernetes//Pod/bench-cp/probe-1"
	body, err := json.Marshal(map[string]any{"clients": []xds.ClientStatus{
		{ID: "c1", Node: "ztunnel~10.0.0.1~z1.istio-system~istio-system.svc.cluster.local", Types: map[string]xds.TypeStatus{
			model.AddressType: {Versions: map[string]string{a: "v2", b: "v1"}},
		}},
		{ID: "c2", Node: "ztunnel~10.0.0.2~z2.istio-system~istio-system.svc.cluster.local", Types: map[string]xds.TypeStatus{
			model.AddressType: {Versions: map[string]string{a: "v2", b: "v2"}, Pending: []string{b}},
		}},
		{ID: "c3", Node: "waypoint~10.0.0.3~wp.ns~ns.svc.cluster.local", Types: map[string]xds.TypeStatus{
			model.AddressType: {Versions: map[string]string{a: "v1"}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := parseZtunnelViews(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != 2 {
		t.Fatalf("%d ztunnel views, want 2 (the waypoint is not one)", len(parsed))
	}
	views := map[string]xds.TypeStatus{} // as the observer keys them: replica/node
	for node, ts := range parsed {
		views["0/"+node] = ts
	}
	changed := func(s ackState) bool { return s.held && s.version != "v1" }
	if !allAcked(views, 2, a, changed) {
		t.Error("a: both ztunnels acknowledged v2")
	}
	if allAcked(views, 3, a, changed) {
		t.Error("a: only 2 of 3 ztunnels connected")
	}
	if allAcked(views, 2, b, changed) {
		t.Error("b: one ztunnel holds v1, the other has v2 pending")
	}
	gone := func(s ackState) bool { return !s.held }
	if !allAcked(views, 2, "Kubernetes//Pod/x/y", gone) || allAcked(views, 2, a, gone) {
		t.Error("removal: a resource held by none and pending for none is acknowledged gone")
	}
	// A ztunnel briefly connected to both replicas counts once, and both
	// of its connections must have acknowledged.
	for k, ts := range views {
		if strings.Contains(k, "10.0.0.1") {
			views["1"+k[1:]] = xds.TypeStatus{Versions: map[string]string{a: "v1"}}
			_ = ts
			break
		}
	}
	if allAcked(views, 2, a, changed) {
		t.Error("a: one connection of a ztunnel still holds v1")
	}
}

func TestMTLSSources(t *testing.T) {
	page := `# HELP istio_tcp_connections_opened_total TCP connections opened.
# TYPE istio_tcp_connections_opened_total counter
istio_tcp_connections_opened_total{reporter="source",source_workload="e-001",source_workload_namespace="bench-enroll",connection_security_policy="mutual_tls"} 2
istio_tcp_connections_opened_total{reporter="source",source_workload="e-002",source_workload_namespace="bench-enroll",connection_security_policy="unknown"} 5
istio_tcp_connections_opened_total{reporter="destination",source_workload="e-003",source_workload_namespace="bench-enroll",connection_security_policy="mutual_tls"} 1
istio_tcp_connections_opened_total{reporter="source",source_workload="e-004",source_workload_namespace="other",connection_security_policy="mutual_tls"} 1
istio_tcp_connections_opened_total{connection_security_policy="mutual_tls",reporter="source",source_workload="e-005",source_workload_namespace="bench-enroll",destination_service="a\"b,c=d"} 1
istio_tcp_connections_closed_total{reporter="source",source_workload="e-006",source_workload_namespace="bench-enroll",connection_security_policy="mutual_tls"} 1
`
	want := map[string]float64{"e-001": 2, "e-005": 1}
	if diff := cmp.Diff(want, mtlsSources([]byte(page), "bench-enroll")); diff != "" {
		t.Errorf("mtlsSources (-want +got):\n%s", diff)
	}
}

func TestControlPlaneDefaults(t *testing.T) {
	full, quick := Defaults("/r", false), Defaults("/r", true)
	if full.PropChanges < 50 || full.EnrollPods != 100 || full.Churn < 60*time.Second || full.ChurnRate != 20 {
		t.Errorf("full mode: %d changes, %d pods, %s churn at %g/s; the issue asks ≥ 50, 100, ≥ 60 s, 20/s", full.PropChanges, full.EnrollPods, full.Churn, full.ChurnRate)
	}
	if quick.Churn >= full.Churn || quick.EnrollPods >= full.EnrollPods || quick.Validate() != nil || full.Validate() != nil {
		t.Errorf("quick mode is not a valid, smaller run: %+v", quick)
	}
	bad := full
	bad.PropChanges = 1
	if bad.Validate() == nil {
		t.Error("1 change validated: a distribution needs one per block")
	}
}

func TestMergeRunningMeshRows(t *testing.T) {
	r := &Report{Rows: []Row{{Scenario: "latency"}, {Scenario: "control-plane", Case: "5000 pods, 1,000 services"}}, Notes: []string{"not measured yet: p99 propagation", "other"}}
	o := &Report{Mode: "quick", Started: time.Date(2026, 11, 27, 13, 30, 0, 0, time.UTC), Duration: 200,
		Rows:  []Row{{Scenario: "control-plane", Case: "running mesh, 2 ztunnels, at rest"}},
		Notes: []string{"control plane: not run in this mode"}}
	r.Merge(o)
	want := []string{"other", "control-plane rows from a separate quick run of 2026-11-27 13:30 UTC (200 s)"}
	if diff := cmp.Diff(want, r.Notes); diff != "" {
		t.Errorf("Merge notes (-want +got):\n%s", diff)
	}
}

func TestChurnDriver(t *testing.T) {
	cs := fake.NewClientset()
	b := &bench{c: &lab.Cluster{Plan: lab.Plan{Nodes: []lab.NodePlan{{Name: "node-1"}, {Name: "node-2"}}}}}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	var st churnStats
	b.churn(ctx, cs, 100, 200*time.Millisecond, &st)
	created, deleted := st.created.Load(), st.deleted.Load()
	// About 60 created in 0.6 s and those older than 0.2 s deleted; a busy
	// machine may fall behind, so the bounds are loose.
	if created < 20 || created > 61 || deleted < 5 || deleted >= created || st.errors.Load() != 0 {
		first, _ := st.firstErr.Load().(string)
		t.Fatalf("created %d, deleted %d, errors %d (%s)", created, deleted, st.errors.Load(), first)
	}
	l, err := cs.CoreV1().Pods(nsChurn).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(l.Items)) != created-deleted {
		t.Errorf("%d pods left, want created−deleted = %d", len(l.Items), created-deleted)
	}
	ips := map[string]bool{}
	for _, p := range l.Items {
		if p.Spec.TerminationGracePeriodSeconds == nil || *p.Spec.TerminationGracePeriodSeconds != 0 {
			t.Errorf("pod %s has a grace period", p.Name)
		}
		if p.Spec.NodeName != churnNode || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" || !podReady(&p) {
			t.Errorf("pod %s: node %q, phase %s, IP %q, ready %t; want running and ready on %s", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, podReady(&p), churnNode)
		}
		if ips[p.Status.PodIP] {
			t.Errorf("IP %s given twice", p.Status.PodIP)
		}
		ips[p.Status.PodIP] = true
	}
	if got := []string{churnIP(0), churnIP(257), churnIP(1<<16 + 1)}; !cmp.Equal(got, []string{"198.18.0.0", "198.18.1.1", "198.19.0.1"}) {
		t.Errorf("churn IPs %v", got)
	}
}

func TestFakeNode(t *testing.T) {
	cs := fake.NewClientset()
	ctx, cancel := context.WithCancel(context.Background())
	done, err := fakeNode(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	n, err := cs.CoreV1().Nodes().Get(context.Background(), churnNode, metav1.GetOptions{})
	if err != nil || len(n.Spec.Taints) != 1 || len(n.Status.Conditions) != 1 || n.Status.Conditions[0].Status != corev1.ConditionTrue {
		t.Fatalf("node %+v, %v", n, err)
	}
	if _, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), churnNode, metav1.GetOptions{}); err != nil {
		t.Errorf("lease: %v", err)
	}
}
