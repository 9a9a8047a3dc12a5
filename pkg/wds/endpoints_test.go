package wds

import (
	"errors"
	"net/netip"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
)

func TestPickEndpoint(t *testing.T) {
	key := "ns1/" + echoHost
	loc := func(w *wl.Workload, region, zone string) *wl.Workload {
		w.Locality = &wl.Locality{Region: region, Zone: zone}
		return w
	}
	unhealthy := func(w *wl.Workload) *wl.Workload { w.Status = wl.WorkloadStatus_UNHEALTHY; return w }
	override := func(w *wl.Workload) *wl.Workload {
		w.Services[key] = &wl.PortList{Ports: []*wl.Port{{ServicePort: 80, TargetPort: 9999}}}
		return w
	}
	src := loc(pod("client", "10.1.0.1"), "r1", "z1")
	tests := []struct {
		name  string
		pods  []*wl.Workload
		lb    *wl.LoadBalancing
		src   *wl.Workload
		port  uint16
		picks int
		want  []string
		err   error
	}{
		{"round robin", []*wl.Workload{pod("a", "10.0.0.1", key), pod("b", "10.0.0.2", key), pod("c", "10.0.0.3", key)}, nil, nil, 80, 4,
			[]string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.1:8080"}, nil},
		{"healthy only", []*wl.Workload{unhealthy(pod("a", "10.0.0.1", key)), pod("b", "10.0.0.2", key)}, nil, nil, 80, 2,
			[]string{"10.0.0.2:8080", "10.0.0.2:8080"}, nil},
		{"allow all health", []*wl.Workload{unhealthy(pod("a", "10.0.0.1", key)), pod("b", "10.0.0.2", key)},
			&wl.LoadBalancing{HealthPolicy: wl.LoadBalancing_ALLOW_ALL}, nil, 80, 2, []string{"10.0.0.1:8080", "10.0.0.2:8080"}, nil},
		{"none healthy", []*wl.Workload{unhealthy(pod("a", "10.0.0.1", key))}, nil, nil, 80, 1, nil, ErrNoEndpoints},
		{"no endpoints", nil, nil, nil, 80, 1, nil, ErrNoEndpoints},
		{"workload target port override", []*wl.Workload{override(pod("a", "10.0.0.1", key))}, nil, nil, 80, 1, []string{"10.0.0.1:9999"}, nil},
		{"unknown port kept", []*wl.Workload{pod("a", "10.0.0.1", key)}, nil, nil, 81, 1, []string{"10.0.0.1:81"}, nil},
		{"locality zone preferred", []*wl.Workload{loc(pod("a", "10.0.0.1", key), "r1", "z2"), loc(pod("b", "10.0.0.2", key), "r1", "z1"), loc(pod("c", "10.0.0.3", key), "r2", "z1")},
			nil, src, 80, 2, []string{"10.0.0.2:8080", "10.0.0.2:8080"}, nil},
		{"locality region fallback", []*wl.Workload{loc(pod("a", "10.0.0.1", key), "r1", "z2"), loc(pod("c", "10.0.0.3", key), "r2", "z1")},
			nil, src, 80, 2, []string{"10.0.0.1:8080", "10.0.0.1:8080"}, nil},
		{"locality unhealthy local falls back", []*wl.Workload{unhealthy(loc(pod("b", "10.0.0.2", key), "r1", "z1")), loc(pod("c", "10.0.0.3", key), "r2", "z1")},
			nil, src, 80, 1, []string{"10.0.0.3:8080"}, nil},
		{"strict locality none", []*wl.Workload{loc(pod("a", "10.0.0.1", key), "r2", "z1")},
			&wl.LoadBalancing{Mode: wl.LoadBalancing_STRICT, RoutingPreference: []wl.LoadBalancing_Scope{wl.LoadBalancing_REGION}}, src, 80, 1, nil, ErrNoEndpoints},
		{"strict locality match", []*wl.Workload{loc(pod("a", "10.0.0.1", key), "r2", "z1"), loc(pod("b", "10.0.0.2", key), "r1", "z9")},
			&wl.LoadBalancing{Mode: wl.LoadBalancing_STRICT, RoutingPreference: []wl.LoadBalancing_Scope{wl.LoadBalancing_REGION}}, src, 80, 1, []string{"10.0.0.2:8080"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			sv := svc(echoHost, "10.96.0.10")
			sv.LoadBalancing = tt.lb
			rs := []*discoveryv3.Resource{sres(t, sv)}
			for _, p := range tt.pods {
				rs = append(rs, wres(t, p))
			}
			if err := s.Apply(AddressType, rs, nil); err != nil {
				t.Fatal(err)
			}
			var srcW *Workload
			if tt.src != nil {
				srcW, _ = newWorkload(tt.src, "cluster.local")
			}
			var got []string
			for range tt.picks {
				ep, err := s.PickEndpoint(s.ServiceByKey(key), tt.port, srcW, netip.MustParseAddr("10.96.0.10"))
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("error %v, want %v", err, tt.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ep.Addr.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("picks (-want +got):\n%s", diff)
			}
		})
	}
}
