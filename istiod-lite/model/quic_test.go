package model

import (
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/pkg/wds"
)

func quicNS(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func ztunnelPod(name, node string, quic bool) *corev1.Pod {
	p := testPod("weft-system", name, "10.0.9.1", map[string]string{"app": "ztunnel", LabelDataplaneMode: DataplaneModeNone})
	p.Spec.NodeName = node
	if quic {
		p.Labels[LabelZtunnelQUIC] = "true"
	}
	return p
}

func advertised(t *testing.T, m *Model, ns, name string) bool {
	t.Helper()
	w := workloadOf(t, m, ns, name)
	if w == nil {
		t.Fatalf("no workload %s/%s", ns, name)
	}
	for _, e := range w.GetExtensions() {
		if e.GetName() == wds.ExtensionHBONEQUIC {
			return true
		}
	}
	return false
}

// TestQUICAdvertisement: the extension follows the namespace setting and
// the mesh-wide default, only for captured non-waypoint pods, and only on
// nodes whose ztunnel serves QUIC.
func TestQUICAdvertisement(t *testing.T) {
	ambient := map[string]string{LabelDataplaneMode: DataplaneModeAmbient}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{LabelDataplaneMode: DataplaneModeAmbient}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		meshWide  bool
		nsLabels  map[string]string
		podLabels map[string]string
		ztunnel   bool // a QUIC ztunnel runs on the pod's node
		want      bool
	}{
		{"off by default", false, ambient, nil, true, false},
		{"namespace quic", false, with(map[string]string{LabelHBONETransport: HBONETransportQUIC}), nil, true, true},
		{"mesh-wide", true, ambient, nil, true, true},
		{"mesh-wide, namespace h2 opts out", true, with(map[string]string{LabelHBONETransport: HBONETransportH2}), nil, true, false},
		{"mesh-wide, unknown value keeps default", true, with(map[string]string{LabelHBONETransport: "bogus"}), nil, true, true},
		{"not captured", true, nil, nil, true, false},
		{"waypoint pod", true, ambient, map[string]string{LabelGatewayName: "wp"}, true, false},
		{"node ztunnel without quic", true, ambient, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Config{HBONEQUIC: tc.meshWide}, slog.New(slog.DiscardHandler))
			m.UpsertNamespace(quicNS("demo", tc.nsLabels))
			m.UpsertPod(ztunnelPod("ztunnel-n1", "n1", tc.ztunnel))
			m.UpsertPod(testPod("demo", "app", "10.0.0.1", tc.podLabels))
			if got := advertised(t, m, "demo", "app"); got != tc.want {
				t.Errorf("advertised = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestQUICRepublish: a namespace label change, and a node's QUIC ztunnel
// coming and going, re-publish the affected workloads and no others.
func TestQUICRepublish(t *testing.T) {
	m := New(Config{}, slog.New(slog.DiscardHandler))
	rec := &recorder{}
	m.OnChange(func(c Changes) { rec.changes = append(rec.changes, c) })
	ambient := map[string]string{LabelDataplaneMode: DataplaneModeAmbient}
	m.UpsertNamespace(quicNS("demo", ambient))
	m.UpsertNamespace(quicNS("other", ambient))
	m.UpsertPod(testPod("demo", "a", "10.0.0.1", nil))
	other := testPod("other", "b", "10.0.0.2", nil)
	m.UpsertPod(other)
	m.UpsertPod(ztunnelPod("ztunnel-n1", "n1", true))
	rec.take()

	m.UpsertNamespace(quicNS("demo", map[string]string{LabelDataplaneMode: DataplaneModeAmbient, LabelHBONETransport: HBONETransportQUIC}))
	if diff := cmp.Diff([]string{m.PodUID("demo", "a")}, rec.take().Addresses); diff != "" {
		t.Errorf("label change re-published (-want +got):\n%s", diff)
	}
	if !advertised(t, m, "demo", "a") || advertised(t, m, "other", "b") {
		t.Fatal("advertisement does not follow the namespace label")
	}

	// The node's ztunnel is replaced by one without QUIC (a rollback): the
	// advertisement goes, and comes back with a QUIC ztunnel.
	m.DeletePod("weft-system", "ztunnel-n1")
	if diff := cmp.Diff([]string{m.PodUID("demo", "a"), m.PodUID("weft-system", "ztunnel-n1")}, rec.take().Addresses); diff != "" {
		t.Errorf("ztunnel removal re-published (-want +got):\n%s", diff)
	}
	if advertised(t, m, "demo", "a") {
		t.Error("advertised on a node without a QUIC ztunnel")
	}
	m.UpsertPod(ztunnelPod("ztunnel-old", "n1", false))
	rec.take()
	if advertised(t, m, "demo", "a") {
		t.Error("advertised on a node whose ztunnel does not serve QUIC")
	}
	m.UpsertPod(ztunnelPod("ztunnel-new", "n1", true))
	if !advertised(t, m, "demo", "a") {
		t.Error("not advertised once the node's ztunnel serves QUIC")
	}
	// A second QUIC ztunnel on the node (surge) changes nothing.
	rec.take()
	m.UpsertPod(ztunnelPod("ztunnel-surge", "n1", true))
	if diff := cmp.Diff([]string{m.PodUID("weft-system", "ztunnel-surge")}, rec.take().Addresses); diff != "" {
		t.Errorf("second ztunnel re-published (-want +got):\n%s", diff)
	}
	// A terminating ztunnel no longer counts once it is the last one.
	m.DeletePod("weft-system", "ztunnel-surge")
	gone := ztunnelPod("ztunnel-new", "n1", true)
	now := metav1.Now()
	gone.DeletionTimestamp = &now
	m.UpsertPod(gone)
	if advertised(t, m, "demo", "a") {
		t.Error("advertised while the node's only QUIC ztunnel terminates")
	}
}
