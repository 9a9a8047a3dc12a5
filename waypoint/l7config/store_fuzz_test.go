package l7config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/waypoint/route"
)

var fuzzTypes = []string{l7api.RouteConfigType, l7api.L7PolicyType, l7api.TrafficPolicyType, "type.googleapis.com/weft.l7.v1.Unknown"}

func fuzzGoodPolicy() *l7api.L7Policy {
	return &l7api.L7Policy{Name: "deny", Namespace: "demo", Action: l7api.Action_DENY,
		Targets: []*l7api.PolicyTarget{{Kind: l7api.PolicyTarget_SERVICE, Namespace: "demo", Name: "echo"}},
		Rules:   []*l7api.L7Rule{{To: []*l7api.Operation{{Methods: []string{"DELETE"}, Paths: []string{"/admin/*"}}}}}}
}

func fuzzTraffic(host string) *l7api.TrafficPolicy {
	return &l7api.TrafficPolicy{Service: &l7api.ServiceRef{Hostname: host},
		ConnectionPool:   &l7api.ConnectionPool{ConnectTimeout: durationpb.New(1e9)},
		OutlierDetection: &l7api.OutlierDetection{MaxEjectionPercent: 50, Interval: durationpb.New(1e9)}}
}

// fuzzStore is a store holding a good configuration of every type.
func fuzzStore(tb testing.TB) *Store {
	tb.Helper()
	s := New(nil, route.WithRand(rand.New(rand.NewPCG(1, 2))))
	for typ, m := range map[string]struct {
		name string
		msg  proto.Message
	}{
		l7api.RouteConfigType:   {echoHost, echoRoutes("5xx")},
		l7api.L7PolicyType:      {"demo/deny", fuzzGoodPolicy()},
		l7api.TrafficPolicyType: {echoHost, fuzzTraffic(echoHost)},
	} {
		a, err := anypb.New(m.msg)
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.Apply(typ, []*discoveryv3.Resource{{Name: m.name, Version: "1", Resource: a}}, nil); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// held lists the names of every resource in the store's dump, by section.
func held(tb testing.TB, s *Store) map[string][]string {
	tb.Helper()
	out := map[string][]string{}
	for k, v := range s.Dump() {
		if m, ok := v.(map[string]any); ok {
			out[k] = slices.Sorted(maps.Keys(m))
		}
	}
	return out
}

// dumpJSON is the store's dump without the last rejection, as JSON.
func dumpJSON(tb testing.TB, s *Store) string {
	tb.Helper()
	d := s.Dump()
	delete(d, "lastRejection")
	b, err := json.Marshal(d)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

var sections = map[string]string{l7api.RouteConfigType: "routes", l7api.L7PolicyType: "l7Policies", l7api.TrafficPolicyType: "trafficPolicies"}
var kinds = map[string]string{l7api.RouteConfigType: "RouteConfig", l7api.L7PolicyType: "L7Policy", l7api.TrafficPolicyType: "TrafficPolicy"}

// FuzzApply gives a store holding a good configuration of every type one
// more response: a resource of a fuzzed name whose body is fuzzed bytes
// under the type's own or another type URL, and a fuzzed removal. A
// rejection names the resource and the field (a *ResourceError for the
// resource, or the compiler's error naming a held or new resource), and
// leaves the configuration in force and every resource held as they were;
// an acceptance advances the version by one and holds exactly the names
// it should.
func FuzzApply(f *testing.F) {
	add := func(typ uint8, name string, m proto.Message, removed string, wrongURL bool) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(typ, name, b, removed, wrongURL)
	}
	add(0, echoHost, echoRoutes("5xx", "reset"), "", false)
	add(0, echoHost, echoRoutes("sometimes"), "", false)
	add(0, "other.demo.svc.cluster.local", echoRoutes(), "", false)
	other := echoRoutes()
	other.Service.Hostname = "other.demo.svc.cluster.local"
	add(0, "other.demo.svc.cluster.local", other, echoHost, false) // duplicate route name across hosts
	other.Routes[0].Name = "HTTPRoute/demo/other/0"
	other.PortProtocols = map[uint32]l7api.Protocol{70000: l7api.Protocol_HTTP}
	add(0, "other.demo.svc.cluster.local", other, "", false)
	add(1, "demo/deny", fuzzGoodPolicy(), "", false)
	add(1, "demo/other", fuzzGoodPolicy(), "", false)
	add(1, "demo/deny", &l7api.L7Policy{Name: "deny", Namespace: "demo", Rules: []*l7api.L7Rule{{From: []*l7api.Source{{IpBlocks: []string{"nope"}}}}}}, "", false)
	add(2, echoHost, fuzzTraffic(echoHost), "demo/deny", false)
	add(2, echoHost, &l7api.TrafficPolicy{Service: &l7api.ServiceRef{Hostname: echoHost}, OutlierDetection: &l7api.OutlierDetection{MaxEjectionPercent: 101}}, "", false)
	add(2, echoHost, &l7api.TrafficPolicy{Service: &l7api.ServiceRef{Hostname: echoHost}, ConnectionPool: &l7api.ConnectionPool{ConnectTimeout: &durationpb.Duration{Seconds: -1}}}, "", false)
	add(2, echoHost, &l7api.TrafficPolicy{Service: &l7api.ServiceRef{Hostname: echoHost}, LoadBalancer: &l7api.LoadBalancer{Policy: 99}}, "", false)
	add(0, echoHost, fuzzGoodPolicy(), "", true)
	add(3, echoHost, echoRoutes(), "", false)
	f.Add(uint8(0), "", []byte{}, echoHost, false)
	f.Add(uint8(1), "demo/deny", []byte{0xff, 0xff}, "", false)

	f.Fuzz(func(t *testing.T, typ uint8, name string, body []byte, removed string, wrongURL bool) {
		s := fuzzStore(t)
		typeURL := fuzzTypes[int(typ)%len(fuzzTypes)]
		anyURL := typeURL
		if wrongURL {
			anyURL = fuzzTypes[(int(typ)+1)%len(fuzzTypes)]
		}
		res := []*discoveryv3.Resource{{Name: name, Version: "2", Resource: &anypb.Any{TypeUrl: anyURL, Value: body}}}
		var rm []string
		if removed != "" {
			rm = []string{removed}
		}
		before, beforeDump, beforeHeld := s.Current(), dumpJSON(t, s), held(t, s)

		err := s.Apply(typeURL, res, rm)

		if err != nil {
			if s.Current() != before {
				t.Fatal("a rejected response changed the configuration in force")
			}
			if got := dumpJSON(t, s); got != beforeDump {
				t.Fatalf("a rejected response changed what is held:\nbefore %s\nafter  %s", beforeDump, got)
			}
			if kinds[typeURL] == "" {
				if !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), typeURL) {
					t.Fatalf("unknown type refused with %v", err)
				}
				return
			}
			if got := s.Dump()["lastRejection"]; got != err.Error() {
				t.Fatalf("lastRejection %q, want %q", got, err)
			}
			var re *ResourceError
			if errors.As(err, &re) && re.Type == kinds[typeURL] && re.Name == name {
				if re.Field == "" {
					t.Fatalf("refusal %q names no field", err)
				}
				return
			}
			// The compilers' errors: "<kind> <quoted name>: <field>...".
			msg := strings.ToLower(err.Error())
			names := append([]string{name}, beforeHeld[sections[typeURL]]...)
			for _, n := range names {
				if q := strings.ToLower(fmt.Sprintf("%q", n)); strings.Contains(msg, q+": ") {
					return
				}
			}
			t.Fatalf("refusal %q names neither the resource %q nor a held one %v with a field", err, name, names[1:])
		}

		if got, want := s.Current().Version, before.Version+1; got != want {
			t.Fatalf("version %d after accepting, want %d", got, want)
		}
		if wrongURL && kinds[anyURL] != kinds[typeURL] {
			t.Fatalf("accepted a body of type %q in a %q response", anyURL, typeURL)
		}
		want := maps.Clone(beforeHeld)
		sec := slices.DeleteFunc(slices.Clone(want[sections[typeURL]]), func(n string) bool { return n == name })
		sec = append(sec, name)
		sec = slices.DeleteFunc(sec, func(n string) bool { return n == removed })
		slices.Sort(sec)
		want[sections[typeURL]] = sec
		if diff := cmp.Diff(want, held(t, s)); diff != "" {
			t.Fatalf("held after accepting (-want +got):\n%s", diff)
		}
	})
}
