package server

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

// echoRoute replaces echo's routes with one catch-all route to echo set up
// by opt.
func (m *mesh) echoRoute(opt func(*l7api.Route)) {
	r := &l7api.Route{Name: "HTTPRoute/demo/echo/0", Backends: []*l7api.WeightedBackend{{Weight: 1, Port: 80,
		Service: &l7api.ServiceRef{Namespace: "demo", Name: "echo", Hostname: "echo.demo.svc.cluster.local"}}}}
	opt(r)
	m.applyL7(l7api.RouteConfigType, "echo.demo.svc.cluster.local", &l7api.RouteConfig{
		Service: &l7api.ServiceRef{Namespace: "demo", Name: "echo", Hostname: "echo.demo.svc.cluster.local"},
		Routes:  []*l7api.Route{r},
	})
}

// reply is a response read in full.
type reply struct {
	StatusCode int
	Header     http.Header
}

func (m *mesh) get(t *testing.T, c *http.Client, path string) (reply, string) {
	t.Helper()
	resp, err := c.Get("http://" + echoVIP + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header}, string(b)
}

func TestRetriesMaskFailures(t *testing.T) {
	m := newMesh(t)
	c := m.httpClient(false)
	if resp, _ := m.get(t, c, "/flaky"); resp.StatusCode != 503 {
		t.Fatalf("without retries: %d, want the backend's 503", resp.StatusCode)
	}
	m.echoRoute(func(r *l7api.Route) {
		r.Retry = &l7api.RetryPolicy{Attempts: 2, RetryOn: []string{"5xx"}, Backoff: durationpb.New(time.Millisecond)}
	})
	for i := range 10 {
		if resp, body := m.get(t, c, "/flaky"); resp.StatusCode != 200 {
			t.Fatalf("request %d with retries: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	m := newMesh(t)
	m.echoRoute(func(r *l7api.Route) { r.Timeouts = &l7api.Timeouts{Request: durationpb.New(50 * time.Millisecond)} })
	start := time.Now()
	resp, body := m.get(t, m.httpClient(true), "/slow?d=10s")
	if resp.StatusCode != http.StatusGatewayTimeout || body != "upstream request timeout" {
		t.Fatalf("got %d %q, want 504", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout answered after %v, the backend's delay", d)
	}
}

func TestRateLimit(t *testing.T) {
	m := newMesh(t)
	m.echoRoute(func(r *l7api.Route) {
		r.RateLimit = &l7api.RateLimit{MaxTokens: 2, TokensPerFill: 2, FillInterval: durationpb.New(time.Hour)}
	})
	c := m.httpClient(false)
	for i := range 2 {
		if resp, _ := m.get(t, c, "/"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	resp, _ := m.get(t, c, "/")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d retry-after %q, want 429 with retry-after", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if n := count(t, m, "istio_requests_total", map[string]string{"response_code": "429", "response_flags": "RL"}); n != 1 {
		t.Errorf("429s counted with flag RL: %v", n)
	}
}

func TestFaultAbort(t *testing.T) {
	m := newMesh(t)
	m.echoRoute(func(r *l7api.Route) { r.Fault = &l7api.FaultInjection{AbortStatus: 418, AbortPercent: 100} })
	if resp, _ := m.get(t, m.httpClient(false), "/"); resp.StatusCode != 418 {
		t.Fatalf("got %d, want the injected 418", resp.StatusCode)
	}
}

func TestCircuitBreakerSheds(t *testing.T) {
	m := newMesh(t)
	m.applyL7(l7api.TrafficPolicyType, "echo.demo.svc.cluster.local", &l7api.TrafficPolicy{
		Service:        &l7api.ServiceRef{Namespace: "demo", Name: "echo", Hostname: "echo.demo.svc.cluster.local"},
		ConnectionPool: &l7api.ConnectionPool{MaxRequests: 1, MaxPendingRequests: 1},
	})
	c := m.httpClient(true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get("http://" + echoVIP + "/slow?d=1s")
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[503] == 0 || codes[200] == 0 {
		t.Errorf("status counts %v: want some served and some shed with 503", codes)
	}
	if n := count(t, m, "istio_requests_total", map[string]string{"response_code": "503", "response_flags": "UO"}); n != float64(codes[503]) {
		t.Errorf("503s counted with flag UO: %v, want %d", n, codes[503])
	}
}

func TestUpgradePassedThrough(t *testing.T) {
	tests := []struct {
		name, request string
		want          int
	}{
		{"upgrade", "GET /upgrade HTTP/1.1\r\nHost: echo.demo.svc.cluster.local\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", http.StatusSwitchingProtocols},
		{"connect", "CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\n", http.StatusOK},
	}
	m := newMesh(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { m.passThrough(t, tt.request, tt.want) })
	}
}

func (m *mesh) passThrough(t *testing.T, request string, want int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.tunnel(ctx, echoVIP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, request)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: strings.Fields(request)[0]})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d", resp.StatusCode, want)
	}
	_, _ = io.WriteString(c, "ping over the upgraded stream")
	got := make([]byte, len("ping over the upgraded stream"))
	if _, err := io.ReadFull(br, got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "ping") {
		t.Errorf("echo %q", got)
	}
}

func TestMirror(t *testing.T) {
	m := newMesh(t)
	m.echoRoute(func(r *l7api.Route) {
		r.Mirrors = []*l7api.Mirror{{Port: 80,
			Service: &l7api.ServiceRef{Namespace: "demo", Name: "echo-v2", Hostname: "echo-v2.demo.svc.cluster.local"}}}
	})
	if resp, body := m.get(t, m.httpClient(false), "/mirrored"); resp.StatusCode != 200 || !strings.HasPrefix(body, "v1") {
		t.Fatalf("got %d %q, want v1's answer", resp.StatusCode, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.hitsV2.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m.hitsV1.Load() != 1 || m.hitsV2.Load() != 1 {
		t.Errorf("v1 served %d, v2 (mirror) %d; want 1 each", m.hitsV1.Load(), m.hitsV2.Load())
	}
}
