package server

import (
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/wds"
)

// Tests of how the data path wires the resilience libraries.

// addEchoEndpoint adds a pod of echo at ip; the backends' ztunnel refuses
// the CONNECT to it unless the test gave it a target.
func (m *mesh) addEchoEndpoint(name, ip string) {
	m.t.Helper()
	w := workload(name, ip, "echo", "echo")
	if err := m.store.Apply(wds.AddressType, []*discoveryv3.Resource{
		addressRes(m.t, w.Uid, &wl.Address{Type: &wl.Address_Workload{Workload: w}})}, nil); err != nil {
		m.t.Fatal(err)
	}
}

// echoTraffic sets echo's traffic policy.
func (m *mesh) echoTraffic(tp *l7api.TrafficPolicy) {
	m.t.Helper()
	tp.Service = &l7api.ServiceRef{Namespace: "demo", Name: "echo", Hostname: "echo.demo.svc.cluster.local"}
	m.applyL7(l7api.TrafficPolicyType, "echo.demo.svc.cluster.local", tp)
}

func TestRetryOnConnectFailureTriesAnotherEndpoint(t *testing.T) {
	m := newMesh(t)
	m.addEchoEndpoint("echo-gone", "10.0.1.9")
	m.echoTraffic(&l7api.TrafficPolicy{LoadBalancer: &l7api.LoadBalancer{Policy: l7api.LoadBalancer_ROUND_ROBIN}})
	m.echoRoute(func(r *l7api.Route) {
		r.Retry = &l7api.RetryPolicy{Attempts: 2, RetryOn: []string{"connect-failure"}, Backoff: durationpb.New(time.Millisecond),
			MinRetriesPerSecond: 100}
	})
	for _, h2 := range []bool{false, true} {
		c := m.httpClient(h2)
		// Round robin over two endpoints: first attempts go to the one whose
		// ztunnel refuses the CONNECT (at least every other one).
		for i := range 6 {
			if resp, body := m.get(t, c, "/"); resp.StatusCode != 200 {
				t.Fatalf("h2=%v request %d: %d %q, want the retry on the other endpoint to answer", h2, i, resp.StatusCode, body)
			}
		}
	}
	if n := count(t, m, "istio_requests_total", map[string]string{"response_code": "200"}); n != 12 {
		t.Errorf("200s counted: %v, want 12", n)
	}
}
