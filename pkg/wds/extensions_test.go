package wds

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
)

func TestWorkloadQUIC(t *testing.T) {
	for _, tc := range []struct {
		name string
		exts []*wl.Extension
		want bool
	}{
		{"none", nil, false},
		{"other extension", []*wl.Extension{{Name: "example.com/other"}}, false},
		{"quic", []*wl.Extension{{Name: ExtensionHBONEQUIC}}, true},
		{"quic among others", []*wl.Extension{{Name: "example.com/other"}, {Name: ExtensionHBONEQUIC}}, true},
		{"prefix is not enough", []*wl.Extension{{Name: ExtensionHBONEQUIC + "-v2"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pod("a", "10.0.0.1")
			p.Extensions = tc.exts
			s := New(Config{})
			if err := s.Apply(AddressType, []*discoveryv3.Resource{wres(t, p)}, nil); err != nil {
				t.Fatal(err)
			}
			w := s.WorkloadByUID(p.Uid)
			if w == nil {
				t.Fatal("workload not stored")
			}
			if w.QUIC != tc.want {
				t.Errorf("QUIC = %v, want %v", w.QUIC, tc.want)
			}
		})
	}
}
