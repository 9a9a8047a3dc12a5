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
