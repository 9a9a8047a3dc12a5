package xds

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/wds"
)

// fuzzPayloads are the resource bodies a fuzzed response picks from;
// the fuzzer's own bytes are another choice.
func fuzzPayloads(tb testing.TB) []*anypb.Any {
	tb.Helper()
	mk := func(typeURL string, m proto.Message) *anypb.Any {
		b, err := proto.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		return &anypb.Any{TypeUrl: typeURL, Value: b}
	}
	ip := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	w := &workloadapi.Workload{Uid: "c1//Pod/ns1/a", Name: "a", Namespace: "ns1", Addresses: [][]byte{ip("10.0.0.1")},
		TunnelProtocol: workloadapi.TunnelProtocol_HBONE, ServiceAccount: "sa-a"}
	svc := &workloadapi.Service{Name: "echo", Namespace: "ns1", Hostname: "echo.ns1.svc.cluster.local",
		Addresses: []*workloadapi.NetworkAddress{{Address: ip("10.96.0.10")}}, Ports: []*workloadapi.Port{{ServicePort: 80, TargetPort: 8080}}}
	badAddr := &workloadapi.Workload{Uid: "c1//Pod/ns1/b", Name: "b", Namespace: "ns1", Addresses: [][]byte{{1, 2, 3}}}
	pol := &securityapi.Authorization{Name: "allow", Namespace: "ns1", Scope: securityapi.Scope_NAMESPACE, Action: securityapi.Action_ALLOW,
		Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{{Principals: []*securityapi.StringMatch{{MatchType: &securityapi.StringMatch_Exact{Exact: "cluster.local/ns/ns1/sa/sa-a"}}}}}}}}}}
	return []*anypb.Any{
		mk(AddressType, &workloadapi.Address{Type: &workloadapi.Address_Workload{Workload: w}}),
		mk(AddressType, &workloadapi.Address{Type: &workloadapi.Address_Service{Service: svc}}),
		mk(AddressType, &workloadapi.Address{Type: &workloadapi.Address_Workload{Workload: badAddr}}),
		mk(AddressType, &workloadapi.Address{}),
		mk(AuthorizationType, pol),
		mk(AuthorizationType, &securityapi.Authorization{}),
		{TypeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster", Value: []byte{0x0a, 0x01, 'x'}},
		nil,
	}
}

var fuzzResourceNames = []string{"c1//Pod/ns1/a", "ns1/echo.ns1.svc.cluster.local", "ns1/allow", "c1//Pod/ns1/b", "", "unknown"}

// fuzzResponses turns fuzzer bytes into responses: a type byte (address,
// authorization, a type never subscribed, empty), a count byte (up to 3
// resources and 3 removals), then per resource a name byte and a payload
// byte (one of fuzzPayloads, or that many bytes of the input as the body
// of an Any of the response's type), and per removal a name byte.
func fuzzResponses(payloads []*anypb.Any, b []byte) []*discoveryv3.DeltaDiscoveryResponse {
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	var out []*discoveryv3.DeltaDiscoveryResponse
	for i := 0; len(b) > 0 && i < 16; i++ {
		typ, counts := next(), next()
		resp := &discoveryv3.DeltaDiscoveryResponse{
			TypeUrl:           []string{AddressType, AuthorizationType, "type.googleapis.com/istio.workload.Unknown", ""}[typ%4],
			Nonce:             "n" + strconv.Itoa(i),
			SystemVersionInfo: strconv.Itoa(i),
		}
		for range counts & 3 {
			name := fuzzResourceNames[int(next())%len(fuzzResourceNames)]
			p := next()
			var body *anypb.Any
			if int(p) < len(payloads)*16 {
				body = payloads[int(p)%len(payloads)]
			} else {
				n := min(int(p)-len(payloads)*16, len(b))
				body = &anypb.Any{TypeUrl: resp.TypeUrl, Value: slices.Clone(b[:n])}
				b = b[n:]
			}
			resp.Resources = append(resp.Resources, &discoveryv3.Resource{Name: name, Version: "v" + strconv.Itoa(int(p)), Resource: body})
		}
		for range (counts >> 2) & 3 {
			resp.RemovedResources = append(resp.RemovedResources, fuzzResourceNames[int(next())%len(fuzzResourceNames)])
		}
		out = append(out, resp)
	}
	return out
}

// FuzzHandleResponse feeds arbitrary delta responses (garbage and
// mistyped Any payloads, type URLs never subscribed, duplicate names,
// removals of unknown names) to a client whose handler is the ztunnel
// workload store. Every response is answered with an ACK or NACK of its
// own type and nonce; a NACK says what was wrong, naming the resource or
// the type, and leaves both the client's accepted versions and the store
// as they were; an ACK records exactly the versions the response carried;
// the client never holds state for a type it did not subscribe to.
func FuzzHandleResponse(f *testing.F) {
	payloads := fuzzPayloads(f)
	f.Add([]byte{0, 0x02, 0, 0, 1, 1})               // a workload and a service
	f.Add([]byte{0, 0x02, 0, 0, 0, 0})               // the same name twice
	f.Add([]byte{0, 0x01, 3, 2})                     // an invalid workload
	f.Add([]byte{0, 0x01, 0, 5, 0, 0x04, 5})         // a wrong type inside, then a removal of an unknown name
	f.Add([]byte{1, 0x01, 2, 4, 1, 0x01, 2, 5})      // a policy, then an empty one
	f.Add([]byte{2, 0x01, 0, 0})                     // a type never subscribed
	f.Add([]byte{3, 0x00})                           // no type at all
	f.Add([]byte{0, 0x01, 0, 7})                     // a resource without a body
	f.Add([]byte{0, 0x01, 0, 130, 0x0a, 0x02, 0x08}) // bytes of the input as the body
	f.Fuzz(func(t *testing.T, script []byte) {
		store := wds.New(wds.Config{})
		c := NewClient(Config{Address: "unused", Types: []string{AddressType, AuthorizationType}, Handler: store})
		held := map[string]map[string]string{AddressType: {}, AuthorizationType: {}}
		for _, resp := range fuzzResponses(payloads, script) {
			before := c.Status()
			dump := store.Dump()
			ack := c.handle(resp)
			after := c.Status()
			if ack.GetTypeUrl() != resp.GetTypeUrl() || ack.GetResponseNonce() != resp.GetNonce() {
				t.Fatalf("answer %v to response of type %q nonce %q", ack, resp.GetTypeUrl(), resp.GetNonce())
			}
			for typ := range after.Types {
				if typ != AddressType && typ != AuthorizationType {
					t.Fatalf("client holds state for type %q it never subscribed to: %+v", typ, after.Types[typ])
				}
			}
			if e := ack.GetErrorDetail(); e != nil {
				if !namesCulprit(e.GetMessage(), resp) {
					t.Fatalf("NACK %q names neither a resource nor the type of %v", e.GetMessage(), resp)
				}
				bt, at := before.Types[resp.GetTypeUrl()], after.Types[resp.GetTypeUrl()]
				bt.NACKs, bt.LastNACK = bt.NACKs+1, e.GetMessage()
				if _, known := before.Types[resp.GetTypeUrl()]; known {
					if diff := cmp.Diff(bt, at); diff != "" {
						t.Fatalf("NACK changed the client's state (-want +got):\n%s", diff)
					}
				}
				if diff := cmp.Diff(dump, store.Dump()); diff != "" {
					t.Fatalf("NACKed response changed the store (-before +after):\n%s", diff)
				}
				continue
			}
			h := held[resp.GetTypeUrl()]
			if h == nil {
				t.Fatalf("ACKed a response of type %q", resp.GetTypeUrl())
			}
			for _, r := range resp.GetResources() {
				h[r.GetName()] = r.GetVersion()
			}
			for _, n := range resp.GetRemovedResources() {
				delete(h, n)
			}
			at := after.Types[resp.GetTypeUrl()]
			if at.Resources != len(h) || at.Nonce != resp.GetNonce() || at.Version != resp.GetSystemVersionInfo() || at.ACKs != before.Types[resp.GetTypeUrl()].ACKs+1 {
				t.Fatalf("after ACK: status %+v, want %d resources at nonce %q", at, len(h), resp.GetNonce())
			}
			c.mu.Lock()
			got := maps.Clone(c.types[resp.GetTypeUrl()].versions)
			c.mu.Unlock()
			if diff := cmp.Diff(h, got); diff != "" {
				t.Fatalf("accepted versions (-want +got):\n%s", diff)
			}
		}
	})
}

// namesCulprit reports whether a NACK message names one of the response's
// resources (quoted, as the handlers do) or its type URL.
func namesCulprit(msg string, resp *discoveryv3.DeltaDiscoveryResponse) bool {
	if resp.GetTypeUrl() != "" && strings.Contains(msg, resp.GetTypeUrl()) || strings.Contains(msg, `""`) && resp.GetTypeUrl() == "" {
		return true
	}
	for _, r := range resp.GetResources() {
		if strings.Contains(msg, fmt.Sprintf("%q", r.GetName())) || r.GetName() == "" && strings.Contains(msg, "empty resource name") {
			return true
		}
	}
	return false
}
