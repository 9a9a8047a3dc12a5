package server

import (
	"io"
	"net/http"
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

// TestCircuitBreakerQueuesHTTP1: with max_connections 1 and
// max_pending_requests 1, a second concurrent HTTP/1.1 request waits for
// the first and is served; a third is shed with 503 and flag UO.
func TestCircuitBreakerQueuesHTTP1(t *testing.T) {
	m := newMesh(t)
	m.echoTraffic(&l7api.TrafficPolicy{ConnectionPool: &l7api.ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1}})
	c := m.httpClient(false)
	type result struct {
		code int
		at   time.Duration
	}
	start := time.Now()
	send := func(path string, out chan<- result) {
		resp, err := c.Get("http://" + echoVIP + path)
		if err != nil {
			t.Error(err)
			out <- result{}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out <- result{resp.StatusCode, time.Since(start)}
	}
	first, queued, shed := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	go send("/slow?d=1500ms", first)
	time.Sleep(300 * time.Millisecond)
	go send("/", queued)
	time.Sleep(300 * time.Millisecond)
	go send("/", shed)
	if r := <-shed; r.code != http.StatusServiceUnavailable || r.at > 1200*time.Millisecond {
		t.Errorf("third request: %d after %v, want 503 at once", r.code, r.at)
	}
	if r := <-first; r.code != http.StatusOK {
		t.Errorf("first request: %d, want 200", r.code)
	}
	if r := <-queued; r.code != http.StatusOK || r.at < 1400*time.Millisecond {
		t.Errorf("second request: %d after %v, want 200 once the first is done", r.code, r.at)
	}
	if n := count(t, m, "istio_requests_total", map[string]string{"response_code": "503", "response_flags": "UO"}); n != 1 {
		t.Errorf("503s counted with flag UO: %v, want 1", n)
	}
}

// TestIdleConnectionHoldsNoSlot: with max_connections 1, the idle
// keep-alive connection to one endpoint does not keep a request from
// reaching another.
func TestIdleConnectionHoldsNoSlot(t *testing.T) {
	m := newMesh(t)
	m.zt.mu.Lock()
	m.zt.targets["10.0.1.5:8080"] = m.zt.targets["10.0.1.1:8080"]
	m.zt.mu.Unlock()
	m.addEchoEndpoint("echo-b", "10.0.1.5")
	m.echoTraffic(&l7api.TrafficPolicy{ConnectionPool: &l7api.ConnectionPool{MaxConnections: 1},
		LoadBalancer: &l7api.LoadBalancer{Policy: l7api.LoadBalancer_ROUND_ROBIN}})
	for _, h2 := range []bool{false, true} {
		c := m.httpClient(h2)
		for i := range 4 { // alternating endpoints
			if resp, body := m.get(t, c, "/"); resp.StatusCode != 200 {
				t.Fatalf("h2=%v request %d: %d %q", h2, i, resp.StatusCode, body)
			}
		}
	}
}

// TestOutlierEjectionPercentOfAllEndpoints: max_ejection_percent 50 of
// four endpoints ejects both failing ones, so that every request after
// they failed once is served.
func TestOutlierEjectionPercentOfAllEndpoints(t *testing.T) {
	m := newMesh(t)
	m.zt.mu.Lock()
	m.zt.targets["10.0.1.5:8080"] = m.zt.targets["10.0.1.1:8080"]
	m.zt.mu.Unlock()
	m.addEchoEndpoint("echo-b", "10.0.1.5")
	m.addEchoEndpoint("echo-gone", "10.0.1.8") // refused
	m.addEchoEndpoint("echo-gone2", "10.0.1.9")
	m.echoTraffic(&l7api.TrafficPolicy{
		OutlierDetection: &l7api.OutlierDetection{Consecutive_5XxErrors: 1, MaxEjectionPercent: 50,
			BaseEjectionTime: durationpb.New(time.Hour)},
		LoadBalancer: &l7api.LoadBalancer{Policy: l7api.LoadBalancer_ROUND_ROBIN}})
	c := m.httpClient(false)
	failed := 0
	for range 4 { // once round the four endpoints
		if resp, _ := m.get(t, c, "/"); resp.StatusCode != 200 {
			failed++
		}
	}
	if failed != 2 {
		t.Fatalf("%d of the first 4 requests failed, want the 2 to the refusing endpoints", failed)
	}
	for i := range 8 {
		if resp, body := m.get(t, c, "/"); resp.StatusCode != 200 {
			t.Fatalf("request %d after both failing endpoints were ejected: %d %q", i, resp.StatusCode, body)
		}
	}
}
