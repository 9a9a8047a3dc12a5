package xds

import (
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/istiod-lite/model"
)

// addressStatus is the only client's view of the address type.
func addressStatus(t *testing.T, h *harness) TypeStatus {
	t.Helper()
	cs := h.srv.Clients(true)
	if len(cs) != 1 {
		t.Fatalf("%d clients, want 1", len(cs))
	}
	return cs[0].Types[model.AddressType]
}

// TestPendingUntilACK: the debug view lists the resources of a response
// the client has not acknowledged as pending, and none once it has, so an
// observer can tell a version held and acknowledged from one only sent.
func TestPendingUntilACK(t *testing.T) {
	h := newHarness(t)
	s := h.open(t)
	s.send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "ztunnel~10.0.0.1~zt.ns~ns.svc.cluster.local"}, TypeUrl: model.AddressType, ResourceNamesSubscribe: []string{"*"}})
	r := s.recv()
	if diff := cmp.Diff([]string{uid(0), uid(1), uid(2)}, addressStatus(t, h).Pending); diff != "" {
		t.Errorf("pending before the first ACK (-want +got):\n%s", diff)
	}
	s.ack(r)
	waitFor(t, func() bool { return len(addressStatus(t, h).Pending) == 0 })

	h.m.UpsertPod(pod(1, false))
	r = s.recv()
	st := addressStatus(t, h)
	if diff := cmp.Diff([]string{uid(1)}, st.Pending); diff != "" {
		t.Errorf("pending after an update (-want +got):\n%s", diff)
	}
	if st.Versions[uid(1)] != r.Resources[0].Version {
		t.Errorf("held version %q, sent %q", st.Versions[uid(1)], r.Resources[0].Version)
	}
	s.ack(r)
	waitFor(t, func() bool { return len(addressStatus(t, h).Pending) == 0 })

	h.m.DeletePod("ns", "p2")
	r = s.recv()
	st = addressStatus(t, h)
	if _, held := st.Versions[uid(2)]; held || !slices.Equal(st.Pending, []string{uid(2)}) {
		t.Errorf("after a removal: held %v, pending %v; want not held, pending", held, st.Pending)
	}
	s.ack(r)
	waitFor(t, func() bool { return len(addressStatus(t, h).Pending) == 0 })
	if st := h.srv.Clients(false)[0].Types[model.AddressType]; st.Pending != nil || st.Versions != nil {
		t.Errorf("without versions the view lists %v pending, %d versions", st.Pending, len(st.Versions))
	}
}
