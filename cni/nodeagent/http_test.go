package nodeagent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthAndMetrics(t *testing.T) {
	h := newHarness(t)
	h.zt.connected = 0
	srv := httptest.NewServer(h.agent.httpHandler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "informers not synced") {
		t.Fatalf("/readyz before sync: %d %s", code, body)
	}
	h.start()
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no ztunnel connected") {
		t.Fatalf("/readyz without ztunnel: %d %s", code, body)
	}
	h.zt.mu.Lock()
	h.zt.connected = 1
	h.zt.mu.Unlock()
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	h.agent.metrics.failure(reasonRules)
	_, body := get("/metrics")
	for _, name := range []string{"weft_cni_pods_enrolled", `weft_cni_enroll_failures_total{reason="rules"} 1`, "weft_cni_add_to_ack_seconds_bucket", "weft_cni_ztunnel_connections"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

func TestRunningPodWithoutZtunnelIsCapturedAndReported(t *testing.T) {
	h := newHarness(t, namespace("demo", true), runningPod("demo", "web", "uid-web", "10.244.1.5"))
	h.cfg.NoZtunnelGrace = 50 * time.Millisecond
	h.agent.cfg.NoZtunnelGrace = 50 * time.Millisecond
	h.zt.connected = 0
	h.net.running["10.244.1.5"] = true
	h.start()
	h.eventually("captured", func() bool { return h.agent.state("uid-web") != nil })
	if h.net.dump("10.244.1.5") == "" {
		t.Fatal("pod not captured")
	}
	select {
	case ev := <-h.events.Events:
		if !strings.Contains(ev, "ZtunnelNotConnected") {
			t.Fatalf("event %q", ev)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no ZtunnelNotConnected event")
	}
	if h.agent.isAcked(h.agent.state("uid-web")) {
		t.Fatal("acked without a ztunnel")
	}
}
