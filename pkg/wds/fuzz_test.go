package wds

import (
	"net/netip"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
)

// FuzzApply feeds arbitrary Address bytes to the store: it must accept or
// reject them without panicking, and an accepted workload or service must
// be usable by lookups and endpoint selection.
func FuzzApply(f *testing.F) {
	w, _ := proto.Marshal(&wl.Address{Type: &wl.Address_Workload{Workload: pod("a", "10.0.0.1", "ns1/"+echoHost)}})
	s, _ := proto.Marshal(&wl.Address{Type: &wl.Address_Service{Service: svc(echoHost, "10.96.0.10")}})
	f.Add(w, "c1//Pod/ns1/a")
	f.Add(s, "ns1/"+echoHost)
	f.Add([]byte{0x0a, 0x00}, "x")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		st := New(Config{})
		svcRes := &discoveryv3.Resource{Name: "ns1/" + echoHost, Resource: &anypb.Any{TypeUrl: AddressType, Value: s}}
		if err := st.Apply(AddressType, []*discoveryv3.Resource{svcRes}, nil); err != nil {
			t.Fatal(err)
		}
		r := &discoveryv3.Resource{Name: name, Resource: &anypb.Any{TypeUrl: AddressType, Value: b}}
		if err := st.Apply(AddressType, []*discoveryv3.Resource{r}, nil); err != nil {
			return
		}
		for _, w := range st.workloads {
			for _, a := range w.Addrs {
				st.Lookup(NetAddr{IP: a})
			}
		}
		if v := st.ServiceByKey("ns1/" + echoHost); v != nil {
			_, _ = st.PickEndpoint(v, 80, nil, netip.MustParseAddr("10.96.0.10"))
		}
		_ = st.Dump()
		if err := st.Apply(AddressType, nil, []string{name}); err != nil {
			t.Fatal(err)
		}
	})
}
