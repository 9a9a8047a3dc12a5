package model

import (
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

type recorder struct{ changes []Changes }

func (r *recorder) take() Changes {
	var out Changes
	for _, c := range r.changes {
		out.Addresses = append(out.Addresses, c.Addresses...)
		out.Authorizations = append(out.Authorizations, c.Authorizations...)
	}
	slices.Sort(out.Addresses)
	slices.Sort(out.Authorizations)
	r.changes = nil
	return out
}

func testPod(ns, name, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}},
	}
}

func workloadOf(t *testing.T, m *Model, ns, name string) *workloadapi.Workload {
	t.Helper()
	r := m.Get(AddressType, m.PodUID(ns, name))
	if r == nil {
		return nil
	}
	msg, err := r.Decode()
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*workloadapi.Address).GetWorkload()
}

func newTestModel(t *testing.T) (*Model, *recorder) {
	m := New(Config{}, slog.New(slog.DiscardHandler))
	rec := &recorder{}
	m.OnChange(func(c Changes) { rec.changes = append(rec.changes, c) })
	for i := range 3 {
		ns := fmt.Sprintf("ns%d", i)
		m.UpsertNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		for j := range 10 {
			m.UpsertPod(testPod(ns, fmt.Sprintf("p%d", j), fmt.Sprintf("10.0.%d.%d", i, j+1), map[string]string{"app": fmt.Sprintf("a%d", j%2)}))
		}
	}
	rec.take()
	return m, rec
}

func TestIncrementalUpdates(t *testing.T) {
	m, rec := newTestModel(t)
	uid := func(ns, n string) string { return m.PodUID(ns, n) }

	t.Run("pod readiness touches only that pod", func(t *testing.T) {
		before := m.podRecomputes
		p := testPod("ns0", "p3", "10.0.0.4", map[string]string{"app": "a1"})
		p.Status.Conditions[0].Status = corev1.ConditionFalse
		m.UpsertPod(p)
		if got := m.podRecomputes - before; got != 1 {
			t.Errorf("recomputed %d workloads, want 1", got)
		}
		if d := cmp.Diff(Changes{Addresses: []string{uid("ns0", "p3")}}, rec.take()); d != "" {
			t.Error(d)
		}
		if workloadOf(t, m, "ns0", "p3").GetStatus() != workloadapi.WorkloadStatus_UNHEALTHY {
			t.Error("want unhealthy")
		}
	})

	t.Run("unchanged pod update publishes nothing", func(t *testing.T) {
		p := testPod("ns0", "p3", "10.0.0.4", map[string]string{"app": "a1"})
		p.Status.Conditions[0].Status = corev1.ConditionFalse
		p.ResourceVersion = "99"
		m.UpsertPod(p)
		if c := rec.take(); !c.Empty() {
			t.Errorf("changes %v", c)
		}
	})

	t.Run("namespace label flips tunnel protocol of its pods only", func(t *testing.T) {
		before := m.podRecomputes
		m.UpsertNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns1", Labels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient}}})
		if got := m.podRecomputes - before; got != 10 {
			t.Errorf("recomputed %d workloads, want 10", got)
		}
		if c := rec.take(); len(c.Addresses) != 10 {
			t.Errorf("changed %d addresses, want 10", len(c.Addresses))
		}
		if workloadOf(t, m, "ns1", "p0").GetTunnelProtocol() != workloadapi.TunnelProtocol_HBONE {
			t.Error("want HBONE")
		}
		m.UpsertNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns1", Labels: map[string]string{"unrelated": "x"}}})
		if workloadOf(t, m, "ns1", "p0").GetTunnelProtocol() != workloadapi.TunnelProtocol_NONE {
			t.Error("want NONE after unlabel")
		}
		rec.take()
		before = m.podRecomputes
		m.UpsertNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns1", Labels: map[string]string{"unrelated": "y"}}})
		if m.podRecomputes != before {
			t.Error("an unrelated label recomputed workloads")
		}
	})

	t.Run("service recomputes only the pods it selects", func(t *testing.T) {
		before := m.podRecomputes
		m.UpsertService(&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns2"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "a0"}, ClusterIPs: []string{"10.96.0.1"},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
		})
		if got := m.podRecomputes - before; got != 5 {
			t.Errorf("recomputed %d workloads, want 5", got)
		}
		c := rec.take()
		if len(c.Addresses) != 6 || !slices.Contains(c.Addresses, "ns2/s.ns2.svc.cluster.local") {
			t.Errorf("changes %v", c.Addresses)
		}
		want := map[string]*workloadapi.PortList{"ns2/s.ns2.svc.cluster.local": {Ports: []*workloadapi.Port{{ServicePort: 80, TargetPort: 8080}}}}
		if d := cmp.Diff(want, workloadOf(t, m, "ns2", "p0").GetServices(), protocmpOpt); d != "" {
			t.Error(d)
		}
		if m.Get(AddressType, "/10.96.0.1") == nil {
			t.Error("service not found by VIP alias")
		}
		// Moving the selector touches the old and the new set.
		before = m.podRecomputes
		m.UpsertService(&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns2"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "a1"}, ClusterIPs: []string{"10.96.0.1"},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}},
		})
		if got := m.podRecomputes - before; got != 10 {
			t.Errorf("recomputed %d workloads, want 10", got)
		}
		if c := rec.take(); len(c.Addresses) != 10 { // 10 pods; the service itself is unchanged
			t.Errorf("changed %d, want 10", len(c.Addresses))
		}
		m.DeleteService("ns2", "s")
		if c := rec.take(); len(c.Addresses) != 6 {
			t.Errorf("changed %d, want 6", len(c.Addresses))
		}
	})

	t.Run("waypoint created after its users", func(t *testing.T) {
		p := testPod("ns0", "p0", "10.0.0.1", map[string]string{"app": "a0", LabelUseWaypoint: "wp"})
		m.UpsertPod(p)
		rec.take()
		if workloadOf(t, m, "ns0", "p0").GetWaypoint() != nil {
			t.Fatal("waypoint before gateway exists")
		}
		before := m.podRecomputes
		m.UpsertGateway(&gatewayv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: "wp", Namespace: "ns0", Labels: map[string]string{LabelWaypointFor: waypointForAll}},
			Spec:       gatewayv1.GatewaySpec{GatewayClassName: WaypointGatewayClass},
		})
		if got := m.podRecomputes - before; got != 1 {
			t.Errorf("recomputed %d, want 1", got)
		}
		if d := cmp.Diff(Changes{Addresses: []string{uid("ns0", "p0")}}, rec.take()); d != "" {
			t.Error(d)
		}
		if workloadOf(t, m, "ns0", "p0").GetWaypoint().GetHostname().GetHostname() != "wp.ns0.svc.cluster.local" {
			t.Error("no waypoint")
		}
		m.DeleteGateway("ns0", "wp")
		if workloadOf(t, m, "ns0", "p0").GetWaypoint() != nil {
			t.Error("waypoint kept after gateway deletion")
		}
		rec.take()
	})

	t.Run("policy selects workloads", func(t *testing.T) {
		ap := policy("ns0", `{"selector":{"matchLabels":{"app":"a1"}},"rules":[{}]}`)
		ap.Name = "allow"
		m.UpsertAuthorizationPolicy(ap)
		c := rec.take()
		if len(c.Addresses) != 5 || !slices.Equal(c.Authorizations, []string{"ns0/allow"}) {
			t.Errorf("changes %v", c)
		}
		if !slices.Equal(workloadOf(t, m, "ns0", "p1").GetAuthorizationPolicies(), []string{"ns0/allow"}) {
			t.Error("policy not listed")
		}
		m.DeleteAuthorizationPolicy("ns0", "allow")
		if c := rec.take(); len(c.Addresses) != 5 || len(c.Authorizations) != 1 || m.Get(AuthorizationType, "ns0/allow") != nil {
			t.Errorf("changes %v", c)
		}
	})

	t.Run("strict peer authentication", func(t *testing.T) {
		pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "ns2"}}
		pa.Spec.Mtls = policyMTLS("STRICT")
		m.UpsertPeerAuthentication(pa)
		c := rec.take()
		if len(c.Addresses) != 10 || !slices.Equal(c.Authorizations, []string{"istio-system/istio_converted_static_strict"}) {
			t.Errorf("changes %v", c)
		}
		if !slices.Equal(workloadOf(t, m, "ns2", "p1").GetAuthorizationPolicies(), []string{"istio-system/istio_converted_static_strict"}) {
			t.Error("strict policy not listed")
		}
		if len(workloadOf(t, m, "ns0", "p1").GetAuthorizationPolicies()) != 0 {
			t.Error("strict leaked to another namespace")
		}
		m.DeletePeerAuthentication("ns2", "default")
		if m.Get(AuthorizationType, "istio-system/istio_converted_static_strict") != nil {
			t.Error("static strict kept")
		}
		rec.take()
	})

	t.Run("pod deletion removes the workload and its alias", func(t *testing.T) {
		m.DeletePod("ns0", "p9")
		if d := cmp.Diff(Changes{Addresses: []string{uid("ns0", "p9")}}, rec.take()); d != "" {
			t.Error(d)
		}
		if m.Get(AddressType, "/10.0.0.10") != nil {
			t.Error("alias kept")
		}
	})
}
