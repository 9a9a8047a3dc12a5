package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

func TestHTTPThroughWaypoint(t *testing.T) {
	m := newMesh(t)
	for _, h2 := range []bool{false, true} {
		proto := "HTTP/1.1"
		if h2 {
			proto = "HTTP/2.0"
		}
		c := m.httpClient(h2)
		tests := []struct {
			name, method, path string
			header             map[string]string
			body               string
			wantCode           int
			wantBackend        string
			wantBody           string
		}{
			{"GET routed to the service", "GET", "/hello?x=1", nil, "", 200, "v1", "v1 GET "},
			{"header match routes to v2", "GET", "/hello", map[string]string{"X-Version": "v2"}, "", 200, "v2", "v2 GET "},
			{"POST with body", "POST", "/upload", nil, "payload", 200, "v1", "v1 POST payload"},
			{"DELETE denied", "DELETE", "/hello", nil, "", 403, "", "RBAC: access denied"},
		}
		for _, tt := range tests {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				req, _ := http.NewRequest(tt.method, "http://"+echoVIP+tt.path, strings.NewReader(tt.body))
				req.Host = "echo.demo.svc.cluster.local"
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantCode || string(body) != tt.wantBody {
					t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tt.wantCode, tt.wantBody)
				}
				if tt.wantBackend == "" {
					return
				}
				if got := resp.Header.Get("X-Backend"); got != tt.wantBackend {
					t.Errorf("backend %q, want %q", got, tt.wantBackend)
				}
				if got := resp.Header.Get("X-Proto"); got != proto {
					t.Errorf("upstream protocol %q, want %q (same as downstream on an undeclared port)", got, proto)
				}
				if got := resp.Header.Get("X-Path"); got != tt.path {
					t.Errorf("upstream path %q, want %q", got, tt.path)
				}
				if tp := resp.Header.Get("X-Traceparent"); len(tp) != 55 {
					t.Errorf("upstream traceparent %q: want one created", tp)
				}
				if got := resp.Trailer.Get("X-Sum"); got != itoa(len(tt.body)) {
					t.Errorf("trailer X-Sum = %q, want %d", got, len(tt.body))
				}
			})
		}
	}
	peers, _ := m.zt.seen()
	for _, p := range peers {
		if p != waypointID.String() {
			t.Errorf("backend ztunnel saw peer %s, want the waypoint", p)
		}
	}
	// Metrics carry Istio's labels; the destination is the Service routed to.
	for _, w := range []struct {
		code, service string
		n             float64
	}{{"200", "echo", 4}, {"200", "echo-v2", 2}, {"403", "echo", 2}} {
		labels := map[string]string{
			"reporter": "waypoint", "response_code": w.code, "source_principal": clientID.String(),
			"source_workload": "client-1", "destination_service": w.service + ".demo.svc.cluster.local",
			"destination_service_name": w.service, "destination_service_namespace": "demo",
			"connection_security_policy": "mutual_tls",
		}
		if w.code == "200" {
			labels["destination_principal"] = backendID.String()
		}
		got := count(t, m, "istio_requests_total", labels)
		if got != w.n {
			t.Errorf("istio_requests_total{response_code=%s,destination_service_name=%s} = %v, want %v", w.code, w.service, got, w.n)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// count sums the samples of counter name whose labels include want.
func count(t *testing.T, m *mesh, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := m.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, mt := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range mt.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue metrics
				}
			}
			sum += mt.GetCounter().GetValue()
		}
	}
	return sum
}

func TestTCPThroughWaypoint(t *testing.T) {
	m := newMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.tunnel(ctx, tcpVIP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "\x00\x01 not http, echoed back"
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Errorf("echo = %q, want %q", got, msg)
	}
	_, fwd := m.zt.seen()
	if len(fwd) == 0 || !strings.Contains(fwd[len(fwd)-1], clientIP+":40000") {
		t.Errorf("forwarded = %q, want the original client", fwd)
	}
}

func TestTCPStricterDeny(t *testing.T) {
	m := newMesh(t)
	// A DENY rule with HTTP fields denies TCP flows outright (Istio's
	// stricter reading), so a client cannot dodge it by not speaking HTTP.
	m.applyL7(l7api.L7PolicyType, "demo/deny-delete", &l7api.L7Policy{
		Name: "deny-delete", Namespace: "demo", Action: l7api.Action_DENY,
		Targets: []*l7api.PolicyTarget{{Kind: l7api.PolicyTarget_SERVICE, Namespace: "demo", Name: "tcp"}},
		Rules:   []*l7api.L7Rule{{To: []*l7api.Operation{{Methods: []string{"DELETE"}}}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.tunnel(ctx, tcpVIP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "\x00\x01 not http")
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Errorf("denied flow echoed %q", got)
	}
	if n := count(t, m, "istio_tcp_connections_opened_total", map[string]string{"destination_service_name": "tcp"}); n != 0 {
		t.Errorf("denied flow counted as opened: %v", n)
	}
}

func TestTCPMaxConnections(t *testing.T) {
	m := newMesh(t)
	m.applyL7(l7api.TrafficPolicyType, "tcp.demo.svc.cluster.local", &l7api.TrafficPolicy{
		Service:        &l7api.ServiceRef{Namespace: "demo", Name: "tcp", Hostname: "tcp.demo.svc.cluster.local"},
		ConnectionPool: &l7api.ConnectionPool{MaxConnections: 1},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	echoOnce := func(c net.Conn) string {
		_, _ = io.WriteString(c, "\x00ping")
		b := make([]byte, 5)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := io.ReadFull(c, b)
		return string(b[:n])
	}
	first, err := m.tunnel(ctx, tcpVIP)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if got := echoOnce(first); got != "\x00ping" {
		t.Fatalf("first connection echoed %q", got)
	}
	second, err := m.tunnel(ctx, tcpVIP)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got := echoOnce(second); got != "" {
		t.Errorf("second connection over max_connections echoed %q", got)
	}
	if n := count(t, m, "istio_tcp_connections_closed_total", map[string]string{"response_flags": "UO"}); n != 0 {
		t.Errorf("refused connection counted as closed: %v", n)
	}
}

func TestUnboundDestinationRefused(t *testing.T) {
	m := newMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := m.tunnel(ctx, otherVIP); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("tunnel to a service not bound to the waypoint: %v, want 401", err)
	}
	if _, err := m.tunnel(ctx, "echo.demo:80"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("tunnel to a host name authority: %v, want 400", err)
	}
}

func TestGRPCThroughWaypoint(t *testing.T) {
	m := newMesh(t)
	cc := m.grpcConn()
	hc := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Unary: OK, and an error status carried in trailers.
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check = %v, %v", resp, err)
	}
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "missing"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Check(missing) = %v, want NotFound", err)
	}

	// Server streaming: each status change arrives as it happens.
	m.health.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Recv = %v, %v", first, err)
	}
	m.health.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	second, err := stream.Recv()
	if err != nil || second.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("second Recv = %v, %v", second, err)
	}
	got := count(t, m, "istio_requests_total", map[string]string{
		"request_protocol": "grpc", "grpc_response_status": "5", "response_code": "200"})
	if got != 1 {
		t.Errorf("grpc NotFound requests = %v, want 1", got)
	}
}

func TestDrainClosesIdleKeepAlive(t *testing.T) {
	m := newMesh(t)
	c := m.httpClient(false)
	resp, err := c.Get("http://" + echoVIP + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The client now holds an idle keep-alive connection; stopping the
	// waypoint must not wait out the drain timeout for it.
	start := time.Now()
	m.stop()
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("drain took %v with only an idle connection open (drain timeout 1s)", d)
	}
}
