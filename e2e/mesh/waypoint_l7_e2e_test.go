//go:build e2e

package mesh_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/e2e/echo"
)

// route is an HTTPRoute on the echo Service (port 8080) with annotations
// (a YAML map body, may be empty) and rules (YAML, indented under rules:).
func route(name, annotations, rules string) string {
	ann := ""
	if annotations != "" {
		ann = "\n  annotations: {" + annotations + "}"
	}
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: %s
  namespace: %s%s
spec:
  parentRefs:
  - {group: "", kind: Service, name: echo, port: 8080}
  rules:
%s`, name, wpNS, ann, rules)
}

// toEcho is a rule sending everything to the echo Service.
const toEcho = "  - backendRefs: [{name: echo, port: 8080}]\n"

func (w *wpEnv) testL7Policy(ctx context.Context, t *testing.T) {
	w.e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: echo-get-only, namespace: `+wpNS+`}
spec:
  targetRefs: [{group: "", kind: Service, name: echo}]
  action: ALLOW
  rules:
  - to: [{operation: {methods: [GET, HEAD]}}]
`)
	var denied echo.Result
	eventually(ctx, t, wpSettle, "GET allowed and DELETE denied (403) by the L7 policy", func() error {
		get, err := w.result(ctx, t, "--url", w.url("/items/1"))
		if err != nil || get.Status != 200 {
			return fmt.Errorf("GET: %+v %v", get, err)
		}
		denied, err = w.result(ctx, t, "--method", "DELETE", "--url", w.url("/items/1"))
		if err != nil || denied.Status != 403 {
			return fmt.Errorf("DELETE: status %d %v", denied.Status, err)
		}
		return nil
	})
	for _, leak := range []string{"echo-get-only", "weft", "istio", wpNS} {
		if strings.Contains(strings.ToLower(denied.Body), leak) {
			t.Errorf("403 body names %q: %q", leak, denied.Body)
		}
	}
}

func (w *wpEnv) testSplit(ctx context.Context, t *testing.T) {
	w.e.applyYAML(ctx, t, route("echo-split", "", `  - backendRefs:
    - {name: echo-v1, port: 8080, weight: 90}
    - {name: echo-v2, port: 8080, weight: 10}
`))
	// Without the route the Service spreads about evenly over v1 and v2.
	eventually(ctx, t, wpSettle, "the 90/10 route in effect", func() error {
		s := w.summary(ctx, t, "--url", w.url("/split"), "--count", "100", "--concurrency", "4")
		if s.Status["200"] != 100 || s.Versions["v2"] > 25 || s.Versions["v1"] < 60 {
			return fmt.Errorf("100 calls: %+v", s)
		}
		return nil
	})
	const n = 1000
	s := w.summary(ctx, t, "--url", w.url("/split"), "--count", fmt.Sprint(n), "--concurrency", "8")
	if s.Status["200"] != n || s.Errors != 0 {
		t.Fatalf("%d calls: %+v", n, s)
	}
	share := float64(s.Versions["v2"]) / n * 100
	t.Logf("90/10 split over %d requests: v1 %d, v2 %d (%.1f%%)", n, s.Versions["v1"], s.Versions["v2"], share)
	if share < 7 || share > 13 {
		t.Errorf("v2 got %.1f%% of %d requests, want 10%% ± 3", share, n)
	}
}

func (w *wpEnv) testHeaderMatch(ctx context.Context, t *testing.T) {
	w.e.applyYAML(ctx, t, route("echo-header", "", `  - matches: [{headers: [{name: x-version, value: v2}]}]
    backendRefs: [{name: echo-v2, port: 8080}]
  - backendRefs: [{name: echo-v1, port: 8080}]
`))
	eventually(ctx, t, wpSettle, "x-version: v2 routed to v2, the rest to v1", func() error {
		v2 := w.summary(ctx, t, "--url", w.url("/hdr"), "-H", "x-version: v2", "--count", "20")
		v1 := w.summary(ctx, t, "--url", w.url("/hdr"), "--count", "20")
		if v2.Versions["v2"] != 20 || v1.Versions["v1"] != 20 {
			return fmt.Errorf("with header %+v; without %+v", v2.Versions, v1.Versions)
		}
		return nil
	})
}

func (w *wpEnv) testRetry(ctx context.Context, t *testing.T) {
	const n = 100
	failing := w.url("/flaky?fail=50")
	base := w.summary(ctx, t, "--url", failing, "--count", fmt.Sprint(n))
	t.Logf("without a retry policy: %d of %d succeed (%+v)", base.Status["200"], n, base.Status)
	w.e.applyYAML(ctx, t, route("echo-retry",
		`weft.dev/retry-attempts: "5", weft.dev/retry-on: "5xx", weft.dev/retry-backoff: "5ms", weft.dev/retry-budget: "100%;min=1000"`, toEcho))
	// Five retries leave 0.5^6 ≈ 1.6% of calls failing.
	eventually(ctx, t, wpSettle, "retries mask a 50% backend failure rate", func() error {
		s := w.summary(ctx, t, "--url", failing, "--count", fmt.Sprint(n))
		if s.Status["200"] < n-7 {
			return fmt.Errorf("%d of %d succeed with retries (%+v)", s.Status["200"], n, s.Status)
		}
		t.Logf("with retries: %d of %d succeed", s.Status["200"], n)
		return nil
	})
}

func (w *wpEnv) testTimeout(ctx context.Context, t *testing.T) {
	w.e.applyYAML(ctx, t, route("echo-timeout", "", "  - backendRefs: [{name: echo, port: 8080}]\n    timeouts: {request: 1s}\n"))
	eventually(ctx, t, wpSettle, "a 1s route timeout cuts a 3s backend delay", func() error {
		r, err := w.result(ctx, t, "--timeout", "10s", "--url", w.url("/slow?delay=3s"))
		if err != nil {
			return err
		}
		if r.Status != 504 || r.Millis < 900 || r.Millis > 2000 {
			return fmt.Errorf("status %d after %.0fms, want 504 after about 1s", r.Status, r.Millis)
		}
		t.Logf("504 after %.0fms", r.Millis)
		return nil
	})
}

func (w *wpEnv) testCircuitBreaking(ctx context.Context, t *testing.T) {
	w.e.applyYAML(ctx, t, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo-limits, namespace: `+wpNS+`}
spec:
  host: `+wpService+`
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, http2MaxRequests: 1}
`)
	eventually(ctx, t, wpSettle, "requests past the limits shed with 503", func() error {
		s := w.summary(ctx, t, "--url", w.url("/busy?delay=200ms"), "--count", "40", "--concurrency", "10")
		if s.Status["503"] == 0 || s.Status["200"] == 0 {
			return fmt.Errorf("40 calls, 10 at a time: %+v", s)
		}
		t.Logf("40 calls 10 at a time against 1 request + 1 pending: %+v", s.Status)
		return nil
	})
}

func (w *wpEnv) testRateLimit(ctx context.Context, t *testing.T) {
	w.e.applyYAML(ctx, t, route("echo-ratelimit", `weft.dev/ratelimit: "5/1m;burst=5"`, toEcho))
	eventually(ctx, t, wpSettle, "the rate limit answers 429 with retry-after", func() error {
		s := w.summary(ctx, t, "--url", w.url("/limited"), "--count", "20")
		if s.Status["429"] < 10 {
			return fmt.Errorf("20 calls against 5 a minute: %+v", s.Status)
		}
		r, err := w.result(ctx, t, "--url", w.url("/limited"))
		if err != nil {
			return err
		}
		if r.Status != 429 || len(r.Headers["Retry-After"]) == 0 {
			return fmt.Errorf("status %d, retry-after %q", r.Status, r.Headers["Retry-After"])
		}
		t.Logf("20 calls: %+v; retry-after %s", s.Status, r.Headers["Retry-After"][0])
		return nil
	})
}

func (w *wpEnv) testGRPC(ctx context.Context, t *testing.T) {
	addr := net.JoinHostPort(w.vip, "7070")
	before := w.requests(ctx, t, `request_protocol="grpc"`)
	unary, err := w.result(ctx, t, "--grpc", addr)
	if err != nil || unary.Reply == nil || unary.Reply.Method != echo.GRPCMethod {
		t.Fatalf("unary gRPC through the waypoint: %+v %v", unary, err)
	}
	stream, err := w.result(ctx, t, "--grpc", addr, "--grpc-stream", "50")
	if err != nil || stream.Messages != 50 {
		t.Fatalf("streaming gRPC through the waypoint: %+v %v", stream, err)
	}
	if got := w.requests(ctx, t, `request_protocol="grpc"`) - before; got < 2 {
		t.Errorf("waypoint counted %v gRPC requests, want 2", got)
	}
	if got := w.requests(ctx, t, `request_protocol="grpc"`, `grpc_response_status="0"`); got < 2 {
		t.Errorf("waypoint counted %v gRPC requests with grpc_response_status 0", got)
	}
}

func (w *wpEnv) testMetrics(ctx context.Context, t *testing.T) {
	labels := []string{
		`reporter="waypoint"`, `request_protocol="http"`, `response_code="200"`,
		`source_principal="` + wpTrust + `wclient"`, `source_workload="wclient"`, `source_workload_namespace="` + wpNS + `"`,
		`destination_service_name="echo"`, `destination_service_namespace="` + wpNS + `"`,
		`destination_workload_namespace="` + wpNS + `"`, `connection_security_policy="mutual_tls"`,
	}
	before := w.requests(ctx, t, labels...)
	if s := w.summary(ctx, t, "--url", w.url("/metrics-check"), "--count", "7"); s.Status["200"] != 7 {
		t.Fatalf("calls: %+v", s)
	}
	m := w.waypointMetrics(ctx, t)
	if got := counter(m, "istio_requests_total", append([]string{`destination_service="` + wpService + `"`}, labels...)...) - before; got < 7 {
		var lines []string
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, "istio_requests_total{") {
				lines = append(lines, l)
			}
		}
		t.Errorf("istio_requests_total with %v grew by %v, want 7; series:\n%s", labels, got, strings.Join(lines, "\n"))
	}
	for _, name := range []string{"istio_request_duration_milliseconds_bucket", "istio_request_bytes_bucket", "istio_response_bytes_bucket"} {
		if counter(m, name, `reporter="waypoint"`, `destination_service="`+wpService+`"`) == 0 {
			t.Errorf("no %s samples for %s", name, wpService)
		}
	}
}

// testTCP: a port declared tcp goes through the waypoint as L4.
func (w *wpEnv) testTCP(ctx context.Context, t *testing.T) {
	addr := net.JoinHostPort(w.vip, "9000")
	opened := func() float64 {
		return counter(w.waypointMetrics(ctx, t), "istio_tcp_connections_opened_total", `destination_service="`+wpService+`"`, `reporter="waypoint"`)
	}
	before := opened()
	r, err := w.result(ctx, t, "--tcp", addr, "--message", "through the waypoint\n")
	if err != nil || r.Echo == nil || *r.Echo != "through the waypoint\n" {
		t.Fatalf("TCP echo through the waypoint: %+v %v", r, err)
	}
	eventually(ctx, t, 5*time.Second, "the waypoint counted the TCP connection", func() error {
		if got := opened() - before; got < 1 {
			return fmt.Errorf("istio_tcp_connections_opened_total grew by %v", got)
		}
		return nil
	})
}

// testPodAddressed: the waypoint is for services (the default
// istio.io/waypoint-for), so calls to a pod's own address bypass it.
func (w *wpEnv) testPodAddressed(ctx context.Context, t *testing.T) {
	pod := w.e.readyPods(ctx, t, wpNS, "app=wecho,version=v1", 1)[0]
	total := func() float64 { return counter(w.waypointMetrics(ctx, t), "istio_requests_total") }
	before := total()
	if s := w.summary(ctx, t, "--url", httpURL(pod, "/direct"), "--count", "5"); s.Status["200"] != 5 {
		t.Fatalf("calls to %s: %+v", pod.Status.PodIP, s)
	}
	if got := total() - before; got != 0 {
		t.Errorf("the waypoint (for services) handled %v pod-addressed requests", got)
	}
}
