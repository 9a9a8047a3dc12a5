package wds

import (
	"net/netip"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
)

func TestEndpoints(t *testing.T) {
	key := "ns1/" + echoHost
	unhealthy := pod("b", "10.0.0.2", key)
	unhealthy.Status = wl.WorkloadStatus_UNHEALTHY
	s := New(Config{})
	rs := []*discoveryv3.Resource{sres(t, svc(echoHost, "10.96.0.10")), wres(t, pod("a", "10.0.0.1", key)), wres(t, unhealthy), wres(t, pod("c", "10.0.0.3", key))}
	if err := s.Apply(AddressType, rs, nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ep := range s.Endpoints(s.ServiceByKey(key), 80, netip.MustParseAddr("10.96.0.10")) {
		got = append(got, ep.Addr.String())
	}
	if diff := cmp.Diff([]string{"10.0.0.1:8080", "10.0.0.3:8080"}, got); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
}

// TestEndpointHotPathAllocs: PickEndpoint runs per outbound connection and
// AppendEndpoints per waypoint request; neither may allocate once the
// caller's buffer is large enough.
func TestEndpointHotPathAllocs(t *testing.T) {
	key := "ns1/" + echoHost
	s := New(Config{})
	rs := []*discoveryv3.Resource{sres(t, svc(echoHost, "10.96.0.10"))}
	for i, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		p := pod(string(rune('a'+i)), ip, key)
		p.Locality = &wl.Locality{Region: "r1", Zone: "z" + ip[len(ip)-1:]}
		rs = append(rs, wres(t, p))
	}
	if err := s.Apply(AddressType, rs, nil); err != nil {
		t.Fatal(err)
	}
	sv := s.ServiceByKey(key)
	vip := netip.MustParseAddr("10.96.0.10")
	cpod := pod("client", "10.1.0.1")
	cpod.Locality = &wl.Locality{Region: "r1", Zone: "z9"}
	src, err := newWorkload(cpod, "cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []*Workload{nil, src} {
		if n := testing.AllocsPerRun(100, func() { _, _ = s.PickEndpoint(sv, 80, from, vip) }); n != 0 {
			t.Errorf("PickEndpoint (src %v): %v allocations per call, want 0", from != nil, n)
		}
	}
	buf := make([]Endpoint, 0, 8)
	if n := testing.AllocsPerRun(100, func() { buf = s.AppendEndpoints(buf[:0], sv, 80, vip) }); n != 0 {
		t.Errorf("AppendEndpoints: %v allocations per call, want 0", n)
	}
	// Every pick is one of the listed endpoints, and the round robin covers
	// them all.
	listed := map[netip.AddrPort]bool{}
	for _, ep := range s.Endpoints(sv, 80, vip) {
		listed[ep.Addr] = true
	}
	picked := map[netip.AddrPort]bool{}
	for range 2 * len(listed) {
		ep, err := s.PickEndpoint(sv, 80, nil, vip)
		if err != nil {
			t.Fatal(err)
		}
		if !listed[ep.Addr] {
			t.Errorf("picked %s, not among Endpoints", ep.Addr)
		}
		picked[ep.Addr] = true
	}
	if diff := cmp.Diff(listed, picked); diff != "" {
		t.Errorf("round robin coverage (-listed +picked):\n%s", diff)
	}
}
