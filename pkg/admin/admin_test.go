package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftmesh/weft/pkg/log"
)

func get(t *testing.T, h http.Handler, url string) (int, string) {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, url, nil))
	b, _ := io.ReadAll(rr.Result().Body)
	return rr.Code, string(b)
}

func TestConfigDumpAndLogging(t *testing.T) {
	root, err := log.New(log.Options{Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	h := Handler(Config{
		Name: "ztunnel",
		Sections: map[string]Dump{
			"workloads":     func() any { return []string{"w1"} },
			"workloadState": func() any { return map[string]string{"uid": "up"} },
		},
		Levels: root,
	})
	code, body := get(t, h, "/config_dump")
	if code != 200 {
		t.Fatalf("config_dump %d %s", code, body)
	}
	var dump map[string]any
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"workloads": []any{"w1"}, "workloadState": map[string]any{"uid": "up"}}, dump); diff != "" {
		t.Errorf("dump (-want +got):\n%s", diff)
	}
	if code, body := get(t, h, "/logging?level=proxy:debug,warn"); code != 200 || !strings.Contains(body, `"proxy": "debug"`) || !strings.Contains(body, `"default": "warn"`) {
		t.Errorf("logging %d %s", code, body)
	}
	if code, _ := get(t, h, "/logging?level=loud"); code != 400 {
		t.Errorf("bad level answered %d", code)
	}
	if code, _ := get(t, h, "/debug/pprof/"); code != 200 {
		t.Errorf("pprof answered %d", code)
	}
	if code, body := get(t, h, "/"); code != 200 || !strings.HasPrefix(body, "ztunnel admin:") {
		t.Errorf("index %d %q", code, body)
	}
}

func TestReadiness(t *testing.T) {
	reason := errors.New("waiting for zds snapshot")
	h := Readiness(func() error { return reason })
	if code, body := get(t, h, "/healthz/ready"); code != 503 || !strings.Contains(body, "zds snapshot") {
		t.Errorf("not ready: %d %s", code, body)
	}
	reason = nil
	if code, _ := get(t, h, "/healthz/ready"); code != 200 {
		t.Errorf("ready: %d", code)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "istio_tcp_connections_opened_total"})
	reg.MustRegister(c)
	c.Inc()
	h := Metrics(reg)
	for _, p := range []string{"/metrics", "/stats/prometheus"} {
		if code, body := get(t, h, p); code != 200 || !strings.Contains(body, "istio_tcp_connections_opened_total 1") {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
}
