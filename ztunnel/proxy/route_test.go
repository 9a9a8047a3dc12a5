package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
)

type noCerts struct{}

func (noCerts) Track(identity.ID)  {}
func (noCerts) Forget(identity.ID) {}
func (noCerts) Get(context.Context, identity.ID) (*identity.Certificate, error) {
	return nil, errors.New("no certificates")
}
func (noCerts) Roots() *x509.CertPool { return x509.NewCertPool() }

type noTunnels struct{}

func (noTunnels) Connect(context.Context, TunnelRequest) (net.Conn, error) {
	return nil, errors.New("no tunnels")
}
func (noTunnels) Serve(context.Context, net.Listener, identity.ID, InboundHandler) error { return nil }

func addr(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func res(t *testing.T, name string, m proto.Message) *discoveryv3.Resource {
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: name, Resource: a}
}

func wk(name, ip, sa string, hbone bool, mut func(*wl.Workload)) *wl.Address {
	w := &wl.Workload{Uid: "c//Pod/ns/" + name, Name: name, Namespace: "ns", ServiceAccount: sa, Addresses: [][]byte{addr(ip)}}
	if hbone {
		w.TunnelProtocol = wl.TunnelProtocol_HBONE
	}
	if mut != nil {
		mut(w)
	}
	return &wl.Address{Type: &wl.Address_Workload{Workload: w}}
}

func sv(host, vip string, mut func(*wl.Service)) *wl.Address {
	s := &wl.Service{Name: host, Namespace: "ns", Hostname: host + ".ns.svc.cluster.local",
		Addresses: []*wl.NetworkAddress{{Address: addr(vip)}}, Ports: []*wl.Port{{ServicePort: 80, TargetPort: 8080}}}
	if mut != nil {
		mut(s)
	}
	return &wl.Address{Type: &wl.Address_Service{Service: s}}
}

func backs(key string) func(*wl.Workload) {
	return func(w *wl.Workload) { w.Services = map[string]*wl.PortList{key: {}} }
}

func TestResolve(t *testing.T) {
	const (
		echoKey = "ns/echo.ns.svc.cluster.local"
		wpKey   = "ns/waypoint.ns.svc.cluster.local"
	)
	wpByHost := &wl.GatewayAddress{Destination: &wl.GatewayAddress_Hostname{Hostname: &wl.NamespacedHostname{Namespace: "ns", Hostname: "waypoint.ns.svc.cluster.local"}}, HboneMtlsPort: 15008}
	wpByAddr := &wl.GatewayAddress{Destination: &wl.GatewayAddress_Address{Address: &wl.NetworkAddress{Address: addr("10.0.0.50")}}}
	store := wds.New(wds.Config{})
	if err := store.Apply(wds.AddressType, []*discoveryv3.Resource{
		res(t, "client", wk("client", "10.0.0.1", "client", true, nil)),
		res(t, "echo-1", wk("echo-1", "10.0.0.2", "echo", true, backs(echoKey))),
		res(t, "legacy", wk("legacy", "10.0.0.3", "legacy", false, backs("ns/legacy.ns.svc.cluster.local"))),
		res(t, "wp-1", wk("wp-1", "10.0.0.50", "waypoint", true, backs(wpKey))),
		res(t, "behind", wk("behind", "10.0.0.4", "behind", true, func(w *wl.Workload) { w.Waypoint = wpByAddr })),
		res(t, echoKey, sv("echo", "10.96.0.1", func(s *wl.Service) { s.SubjectAltNames = []string{"spiffe://cluster.local/ns/ns/sa/shared"} })),
		res(t, "ns/legacy", sv("legacy", "10.96.0.2", nil)),
		res(t, wpKey, sv("waypoint", "10.96.0.50", nil)),
		res(t, "ns/via-wp", sv("via-wp", "10.96.0.3", func(s *wl.Service) { s.Waypoint = wpByHost })),
		res(t, "ns/empty", sv("empty", "10.96.0.4", nil)),
		res(t, "ns/pass", sv("pass", "10.96.0.9", func(s *wl.Service) {
			s.LoadBalancing = &wl.LoadBalancing{Mode: wl.LoadBalancing_PASSTHROUGH}
		})),
		res(t, "ns/bad-wp", sv("bad-wp", "10.96.0.5", func(s *wl.Service) {
			s.Waypoint = &wl.GatewayAddress{Destination: &wl.GatewayAddress_Hostname{Hostname: &wl.NamespacedHostname{Namespace: "ns", Hostname: "gone"}}}
		})),
	}, nil); err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Store: store, Certs: noCerts{}, Tunnels: noTunnels{}, Inbound: noTunnels{}})
	if err != nil {
		t.Fatal(err)
	}
	client := store.WorkloadByUID("c//Pod/ns/client")
	id := func(sa string) identity.ID {
		return identity.ID{TrustDomain: "cluster.local", Namespace: "ns", ServiceAccount: sa}
	}
	type view struct {
		HBONE     bool
		Addr      string
		Authority string
		Expected  []identity.ID
		Waypoint  bool
	}
	tests := []struct {
		name    string
		src     *wds.Workload
		dst     string
		want    view
		wantErr error
	}{
		{"service to HBONE endpoint", client, "10.96.0.1:80", view{true, "10.0.0.2:15008", "10.0.0.2:8080", []identity.ID{id("shared"), id("echo")}, false}, nil},
		{"pod IP over HBONE", client, "10.0.0.2:9000", view{true, "10.0.0.2:15008", "10.0.0.2:9000", []identity.ID{id("echo")}, false}, nil},
		{"passthrough service targets the original destination", client, "10.96.0.9:80", view{false, "10.96.0.9:80", "", nil, false}, nil},
		{"service to non-mesh endpoint", client, "10.96.0.2:80", view{false, "10.0.0.3:8080", "", nil, false}, nil},
		{"non-mesh workload", client, "10.0.0.3:22", view{false, "10.0.0.3:22", "", nil, false}, nil},
		{"outside the mesh passes through", client, "8.8.8.8:443", view{false, "8.8.8.8:443", "", nil, false}, nil},
		{"service waypoint by hostname", client, "10.96.0.3:80", view{true, "10.0.0.50:15008", "10.96.0.3:80", []identity.ID{id("waypoint")}, true}, nil},
		{"workload waypoint by address", client, "10.0.0.4:8080", view{true, "10.0.0.50:15008", "10.0.0.4:8080", []identity.ID{id("waypoint")}, true}, nil},
		{"waypoint itself goes direct", store.WorkloadByUID("c//Pod/ns/wp-1"), "10.0.0.4:8080", view{true, "10.0.0.4:15008", "10.0.0.4:8080", []identity.ID{id("behind")}, false}, nil},
		{"service without endpoints", client, "10.96.0.4:80", view{}, errNoHealthy},
		{"unknown waypoint", client, "10.96.0.5:80", view{}, errNoRoute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := p.resolve(context.Background(), tt.src, netip.MustParseAddrPort(tt.dst))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := view{r.hbone, r.addr.String(), r.authority, r.expected, r.waypoint}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("route (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForwardedFor(t *testing.T) {
	for in, want := range map[string]string{
		`for="10.0.0.1:4321"`:                       "10.0.0.1",
		`for="10.0.0.1:4321";host=echo.ns.svc`:      "10.0.0.1",
		`for="[fd00::1]:80"`:                        "fd00::1",
		`for=10.0.0.9`:                              "10.0.0.9",
		`host=x;for="10.0.0.2:1", for="10.0.0.3:1"`: "10.0.0.2",
		`for=_hidden`:                               "",
		``:                                          "",
	} {
		got, ok := forwardedFor(in)
		if (want == "") == ok || (ok && got.String() != want) {
			t.Errorf("forwardedFor(%q) = %v, %v; want %q", in, got, ok, want)
		}
	}
}
