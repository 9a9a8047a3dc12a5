package udp

import (
	"context"
	"net/netip"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/anypb"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
)

type noTunnels struct{}

func (noTunnels) ConnectUDP(context.Context, *inpod.Pod, *wds.Workload, netip.AddrPort) (*hbone3.DatagramConn, error) {
	return nil, context.Canceled
}

func addrRes(t *testing.T, name string, a *wl.Address) *discoveryv3.Resource {
	t.Helper()
	m, err := anypb.New(a)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: name, Resource: m}
}

func TestResolve(t *testing.T) {
	ip := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	w := func(name, addr string, proto wl.TunnelProtocol, quic bool, waypoint bool) *wl.Address {
		x := &wl.Workload{Uid: "Kubernetes//Pod/ns1/" + name, Name: name, Namespace: "ns1", Addresses: [][]byte{ip(addr)},
			TunnelProtocol: proto, ServiceAccount: name,
			Services: map[string]*wl.PortList{"ns1/dns.ns1.svc.cluster.local": {Ports: []*wl.Port{{ServicePort: 53, TargetPort: 5353}}}}}
		if quic {
			x.Extensions = []*wl.Extension{{Name: wds.ExtensionHBONEQUIC}}
		}
		if waypoint {
			x.Waypoint = &wl.GatewayAddress{Destination: &wl.GatewayAddress_Address{Address: &wl.NetworkAddress{Address: ip("10.0.0.99")}}, HboneMtlsPort: 15008}
		}
		return &wl.Address{Type: &wl.Address_Workload{Workload: x}}
	}
	store := wds.New(wds.Config{})
	svc := &wl.Service{Name: "dns", Namespace: "ns1", Hostname: "dns.ns1.svc.cluster.local",
		Addresses: []*wl.NetworkAddress{{Address: ip("10.96.0.53")}}, Ports: []*wl.Port{{ServicePort: 53, TargetPort: 5353}}}
	if err := store.Apply(wds.AddressType, []*discoveryv3.Resource{
		addrRes(t, "q", w("quic", "10.1.0.1", wl.TunnelProtocol_HBONE, true, false)),
		addrRes(t, "h", w("h2only", "10.1.0.2", wl.TunnelProtocol_HBONE, false, false)),
		addrRes(t, "p", w("plain", "10.1.0.3", wl.TunnelProtocol_NONE, false, false)),
		addrRes(t, "wp", w("waypointed", "10.1.0.4", wl.TunnelProtocol_HBONE, true, true)),
		addrRes(t, "ns1/dns.ns1.svc.cluster.local", &wl.Address{Type: &wl.Address_Service{Service: svc}}),
	}, nil); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: store, Tunnels: noTunnels{}})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		Tunnel bool
		Target string
		Reason string
	}
	for _, tc := range []struct {
		name, dst string
		want      result
	}{
		{"quic workload tunnelled", "10.1.0.1:7000", result{true, "10.1.0.1:7000", ""}},
		{"mesh workload without quic dropped", "10.1.0.2:7000", result{false, "", dropNoQUIC}},
		{"workload outside hbone passed through", "10.1.0.3:7000", result{false, "10.1.0.3:7000", ""}},
		{"waypoint dropped", "10.1.0.4:7000", result{false, "", dropWaypoint}},
		{"unknown address passed through", "192.0.2.1:123", result{false, "192.0.2.1:123", ""}},
		{"service vip picks an endpoint and maps the port", "10.96.0.53:53", result{false, "", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, reason, err := s.resolve(nil, netip.MustParseAddrPort(tc.dst))
			if (err != nil) != (reason != "") {
				t.Fatalf("err %v with reason %q", err, reason)
			}
			got := result{Tunnel: r.dst != nil, Reason: reason}
			if r.target.IsValid() {
				got.Target = r.target.String()
			}
			if tc.name == "service vip picks an endpoint and maps the port" {
				// Every endpoint's port is mapped to 5353; which one is
				// chosen depends on health and rotation.
				if reason == "" && r.target.Port() != 5353 {
					t.Fatalf("target %s: port not mapped to 5353", r.target)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("resolve %s (-want +got):\n%s", tc.dst, diff)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("no store and tunnels: want an error")
	}
	s, err := New(Config{Store: wds.New(wds.Config{}), Tunnels: noTunnels{}})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.IdleTimeout != DefaultIdleTimeout || s.cfg.MaxFlowsPerPod != DefaultMaxFlowsPerPod {
		t.Errorf("defaults %v %d", s.cfg.IdleTimeout, s.cfg.MaxFlowsPerPod)
	}
	if _, err := New(Config{Store: wds.New(wds.Config{}), Tunnels: noTunnels{}, IdleTimeout: -1}); err == nil {
		t.Error("negative idle timeout accepted")
	}
}
