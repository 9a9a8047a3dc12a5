package wds

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/l4authz"
)

func res(t testing.TB, name string, m proto.Message) *discoveryv3.Resource {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: name, Resource: a}
}

func ip(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func pod(name, addr string, svcs ...string) *wl.Workload {
	w := &wl.Workload{Uid: "c1//Pod/ns1/" + name, Name: name, Namespace: "ns1", Addresses: [][]byte{ip(addr)},
		TunnelProtocol: wl.TunnelProtocol_HBONE, ServiceAccount: "sa-" + name, Services: map[string]*wl.PortList{}}
	for _, s := range svcs {
		w.Services[s] = &wl.PortList{Ports: []*wl.Port{{ServicePort: 80, TargetPort: 8080}}}
	}
	return w
}

func wres(t testing.TB, w *wl.Workload) *discoveryv3.Resource {
	return res(t, w.Uid, &wl.Address{Type: &wl.Address_Workload{Workload: w}})
}

func svc(host, vip string) *wl.Service {
	return &wl.Service{Name: strings.Split(host, ".")[0], Namespace: "ns1", Hostname: host,
		Addresses: []*wl.NetworkAddress{{Address: ip(vip)}}, Ports: []*wl.Port{{ServicePort: 80, TargetPort: 8080}}}
}

func sres(t testing.TB, s *wl.Service) *discoveryv3.Resource {
	return res(t, s.Namespace+"/"+s.Hostname, &wl.Address{Type: &wl.Address_Service{Service: s}})
}

func na(s string) NetAddr { return NetAddr{IP: netip.MustParseAddr(s)} }

const echoHost = "echo.ns1.svc.cluster.local"

func TestApplyAndLookup(t *testing.T) {
	s := New(Config{})
	if err := s.Apply(AddressType, []*discoveryv3.Resource{
		wres(t, pod("a", "10.0.0.1", "ns1/"+echoHost)),
		wres(t, pod("b", "10.0.0.2", "ns1/"+echoHost)),
		sres(t, svc(echoHost, "10.96.0.10")),
	}, nil); err != nil {
		t.Fatal(err)
	}
	if w := s.WorkloadByUID("c1//Pod/ns1/a"); w == nil || w.Identity.String() != "spiffe://cluster.local/ns/ns1/sa/sa-a" {
		t.Fatalf("WorkloadByUID = %+v", w)
	}
	if w := s.WorkloadByIP(na("10.0.0.2")); w == nil || w.Name() != "b" {
		t.Fatalf("WorkloadByIP = %+v", w)
	}
	if w := s.WorkloadByIP(NetAddr{IP: netip.MustParseAddr("::ffff:10.0.0.2")}); w == nil {
		t.Fatal("mapped address lookup failed")
	}
	if v := s.ServiceByVIP(na("10.96.0.10")); v == nil || v.Key != "ns1/"+echoHost {
		t.Fatalf("ServiceByVIP = %+v", v)
	}
	if v := s.ServicesByHostname(echoHost); len(v) != 1 {
		t.Fatalf("ServicesByHostname = %v", v)
	}
	if w, v := s.Lookup(na("10.96.0.10")); w != nil || v == nil {
		t.Fatal("Lookup of VIP did not give the service")
	}
	if w, v := s.Lookup(na("8.8.8.8")); w != nil || v != nil {
		t.Fatal("Lookup of outside address found something")
	}

	// Update b's address, remove a and the service.
	b := pod("b", "10.0.0.3", "ns1/"+echoHost)
	if err := s.Apply(AddressType, []*discoveryv3.Resource{wres(t, b)}, []string{"c1//Pod/ns1/a", "ns1/" + echoHost}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.0.0.1", "10.0.0.2"} {
		if s.WorkloadByIP(na(a)) != nil {
			t.Errorf("%s still indexed", a)
		}
	}
	if s.WorkloadByIP(na("10.0.0.3")) == nil || s.ServiceByVIP(na("10.96.0.10")) != nil || len(s.ServicesByHostname(echoHost)) != 0 {
		t.Error("update/remove not reflected")
	}
	// Removing an unknown name is fine.
	if err := s.Apply(AddressType, nil, []string{"nope"}); err != nil {
		t.Fatal(err)
	}
}

func TestNACKKeepsLastGoodState(t *testing.T) {
	badAddr := pod("bad", "10.0.0.9")
	badAddr.Addresses = [][]byte{{1, 2, 3}}
	noUID := pod("x", "10.0.0.9")
	noUID.Uid = ""
	badTD := pod("y", "10.0.0.9")
	badTD.TrustDomain = "Upper.Case"
	badWaypoint := pod("z", "10.0.0.9")
	badWaypoint.Waypoint = &wl.GatewayAddress{}
	badPort := svc(echoHost, "10.96.0.11")
	badPort.Ports[0].TargetPort = 70000
	noHost := svc(echoHost, "10.96.0.11")
	noHost.Hostname = ""
	tests := []struct {
		name string
		typ  string
		r    *discoveryv3.Resource
		want string
	}{
		{"bad address", AddressType, wres(t, badAddr), `address "c1//Pod/ns1/bad": workload.addresses[0]: 3 bytes`},
		{"no uid", AddressType, res(t, "x", &wl.Address{Type: &wl.Address_Workload{Workload: noUID}}), "workload.uid: must not be empty"},
		{"bad trust domain", AddressType, wres(t, badTD), "workload.trust_domain/service_account"},
		{"bad waypoint", AddressType, wres(t, badWaypoint), "workload.waypoint.destination: neither address nor hostname"},
		{"bad target port", AddressType, sres(t, badPort), "service.ports[0].target_port: 70000 out of range"},
		{"no hostname", AddressType, res(t, "ns1/x", &wl.Address{Type: &wl.Address_Service{Service: noHost}}), "service.hostname: must not be empty"},
		{"empty address", AddressType, res(t, "e", &wl.Address{}), "neither workload nor service"},
		{"wrong type", AddressType, res(t, "p", &securityapi.Authorization{Name: "p", Namespace: "ns1"}), "want \"type.googleapis.com/istio.workload.Address\""},
		{"bad body", AddressType, &discoveryv3.Resource{Name: "b", Resource: &anypb.Any{TypeUrl: AddressType, Value: []byte{0xff}}}, "decode"},
		{"no body", AddressType, &discoveryv3.Resource{Name: "b"}, "no body"},
		{"bad policy", AuthorizationType, res(t, "ns1/p", &securityapi.Authorization{Name: "p", Namespace: "ns1",
			Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{{DestinationPorts: []uint32{0}}}}}}}}),
			`authorization "ns1/p": rules[0].clauses[0].matches[0].destination_ports[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			good := pod("a", "10.0.0.1")
			if err := s.Apply(AddressType, []*discoveryv3.Resource{wres(t, good)}, nil); err != nil {
				t.Fatal(err)
			}
			deny := &securityapi.Authorization{Name: "deny", Namespace: "ns1", Scope: securityapi.Scope_NAMESPACE, Action: securityapi.Action_DENY,
				Rules: []*securityapi.Rule{{}}}
			if err := s.Apply(AuthorizationType, []*discoveryv3.Resource{res(t, "ns1/deny", deny)}, nil); err != nil {
				t.Fatal(err)
			}
			before := s.Dump()
			// The bad resource comes with a good one and a removal: none applies.
			companion := wres(t, pod("c", "10.0.0.5"))
			if tt.typ == AuthorizationType {
				companion = res(t, "ns1/ok", &securityapi.Authorization{Name: "ok", Namespace: "ns1"})
			}
			err := s.Apply(tt.typ, []*discoveryv3.Resource{companion, tt.r}, []string{good.Uid, "ns1/deny"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply error = %v, want containing %q", err, tt.want)
			}
			if diff := cmp.Diff(before, s.Dump()); diff != "" {
				t.Errorf("state changed after NACK (-before +after):\n%s", diff)
			}
			if s.Authorizer().Evaluate(l4authz.Target{Namespace: "ns1"}, l4authz.Conn{}).Allowed {
				t.Error("deny policy lost")
			}
		})
	}
	if err := New(Config{}).Apply("type.googleapis.com/other", nil, nil); err == nil {
		t.Error("unknown type accepted")
	}
}

func TestPolicies(t *testing.T) {
	s := New(Config{})
	if !s.Authorizer().Evaluate(l4authz.Target{Namespace: "ns1"}, l4authz.Conn{}).Allowed {
		t.Fatal("empty store denies")
	}
	deny := &securityapi.Authorization{Name: "deny", Namespace: "ns1", Scope: securityapi.Scope_NAMESPACE, Action: securityapi.Action_DENY, Rules: []*securityapi.Rule{{}}}
	if err := s.Apply(AuthorizationType, []*discoveryv3.Resource{res(t, "ns1/deny", deny)}, nil); err != nil {
		t.Fatal(err)
	}
	if d := s.Authorizer().Evaluate(l4authz.Target{Namespace: "ns1"}, l4authz.Conn{}); d.Allowed || d.Policy != "ns1/deny" {
		t.Fatalf("decision %+v", d)
	}
	if err := s.Apply(AuthorizationType, nil, []string{"ns1/deny"}); err != nil {
		t.Fatal(err)
	}
	if !s.Authorizer().Evaluate(l4authz.Target{Namespace: "ns1"}, l4authz.Conn{}).Allowed {
		t.Fatal("removed policy still denies")
	}
}

// TestPortDenyAfterAllow: a DENY on a port applied while an ALLOW is in
// force decides the very next evaluation (the engine is rebuilt, nothing
// is cached), and Changed fires so that open connections can be
// re-checked.
func TestPortDenyAfterAllow(t *testing.T) {
	s := New(Config{})
	allow := &securityapi.Authorization{Name: "allow", Namespace: "ns1", Scope: securityapi.Scope_NAMESPACE,
		Action: securityapi.Action_ALLOW, Rules: []*securityapi.Rule{{}}}
	denyPort := &securityapi.Authorization{Name: "deny-9000", Namespace: "ns1", Scope: securityapi.Scope_NAMESPACE,
		Action: securityapi.Action_DENY, Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{
			Matches: []*securityapi.Match{{DestinationPorts: []uint32{9000}}}}}}}}
	if err := s.Apply(AuthorizationType, []*discoveryv3.Resource{res(t, "ns1/allow", allow)}, nil); err != nil {
		t.Fatal(err)
	}
	to := func(port uint16) l4authz.Conn {
		return l4authz.Conn{SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: port}
	}
	tgt := l4authz.Target{Namespace: "ns1"}
	if !s.Authorizer().Evaluate(tgt, to(9000)).Allowed {
		t.Fatal("ALLOW policy denies")
	}
	changed := s.Changed()
	if err := s.Apply(AuthorizationType, []*discoveryv3.Resource{res(t, "ns1/deny-9000", denyPort)}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed did not fire for a policy update")
	}
	if d := s.Authorizer().Evaluate(tgt, to(9000)); d.Allowed || d.Policy != "ns1/deny-9000" {
		t.Errorf("port 9000 after the DENY: %+v", d)
	}
	if d := s.Authorizer().Evaluate(tgt, to(8080)); !d.Allowed || d.Policy != "ns1/allow" {
		t.Errorf("port 8080 after the DENY: %+v", d)
	}
}

func TestSynced(t *testing.T) {
	s := New(Config{})
	_ = s.Apply(AddressType, nil, nil)
	select {
	case <-s.Synced():
		t.Fatal("synced after one type")
	default:
	}
	_ = s.Apply(AuthorizationType, nil, nil)
	select {
	case <-s.Synced():
	default:
		t.Fatal("not synced after both types")
	}
}

type recordingSubscriber struct {
	mu    sync.Mutex
	names []string
	ch    chan string
}

func (r *recordingSubscriber) Subscribe(typeURL string, names ...string) {
	r.mu.Lock()
	r.names = append(r.names, names...)
	r.mu.Unlock()
	for _, n := range names {
		r.ch <- n
	}
}

func TestLookupOnDemand(t *testing.T) {
	s := New(Config{})
	sub := &recordingSubscriber{ch: make(chan string, 4)}
	s.SetSubscriber(sub)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	type result struct {
		w *Workload
		v *Service
	}
	done := make(chan result, 1)
	go func() { w, v := s.LookupOnDemand(ctx, na("10.0.0.7")); done <- result{w, v} }()
	if n := <-sub.ch; n != "/10.0.0.7" {
		t.Fatalf("subscribed to %q", n)
	}
	// An unrelated update does not end the wait.
	_ = s.Apply(AddressType, []*discoveryv3.Resource{wres(t, pod("other", "10.0.0.8"))}, nil)
	_ = s.Apply(AddressType, []*discoveryv3.Resource{wres(t, pod("late", "10.0.0.7"))}, nil)
	if r := <-done; r.w == nil || r.w.Name() != "late" {
		t.Fatalf("on-demand result %+v", r)
	}

	// The control plane says an alias does not exist: the wait ends with nothing.
	go func() { w, v := s.LookupOnDemand(ctx, na("1.1.1.1")); done <- result{w, v} }()
	<-sub.ch
	_ = s.Apply(AddressType, nil, []string{"/1.1.1.1"})
	if r := <-done; r.w != nil || r.v != nil {
		t.Fatalf("missing alias gave %+v", r)
	}
	// Known missing: no new subscription, immediate answer.
	if w, v := s.LookupOnDemand(ctx, na("1.1.1.1")); w != nil || v != nil {
		t.Fatal("missing address found")
	}
	// Timeout.
	short, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	go func() { <-sub.ch }()
	if w, v := s.LookupOnDemand(short, na("2.2.2.2")); w != nil || v != nil {
		t.Fatal("timeout gave a result")
	}
}

func TestDump(t *testing.T) {
	s := New(Config{})
	_ = s.Apply(AddressType, []*discoveryv3.Resource{wres(t, pod("a", "10.0.0.1")), sres(t, svc(echoHost, "10.96.0.10"))}, nil)
	b, err := json.Marshal(s.Dump())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"workloads":[{`, `"uid":"c1//Pod/ns1/a"`, `"hostname":"echo.ns1.svc.cluster.local"`, `"policies":[]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("dump %s lacks %s", b, want)
		}
	}
}
