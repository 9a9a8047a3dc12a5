package main

import (
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/istiod-lite/server"
)

func TestParse(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "weft-system")
	t.Setenv("PUSH_DEBOUNCE", "20ms")
	t.Setenv("KUBE_QPS", "75")
	cfg, err := parse([]string{"--push-max-delay", "1s", "--require-redirection=false", "--kube-burst", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Namespace != "weft-system" || cfg.RootNamespace != "weft-system" || cfg.Debounce != 20*time.Millisecond ||
		cfg.MaxDebounce != time.Second || cfg.RequireRedirection || cfg.KubeQPS != 75 || cfg.KubeBurst != 7 {
		t.Errorf("cfg = %+v", cfg)
	}
	for _, tt := range []struct{ env, value, want string }{
		{"SHUTDOWN_GRACE", "30", "$SHUTDOWN_GRACE"},
		{"REQUIRE_REDIRECTION", "sometimes", "$REQUIRE_REDIRECTION"},
		{"KUBE_QPS", "fast", "$KUBE_QPS"},
		{"MEMORY_LIMIT", "lots", "$MEMORY_LIMIT"},
	} {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			if _, err := parse(nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse with %s=%q: error %v, want one naming %s", tt.env, tt.value, err, tt.want)
			}
		})
	}
	t.Setenv("MEMORY_LIMIT", "200Mi")
	if cfg, err := parse(nil); err != nil || cfg.MemoryLimit != 200<<20 {
		t.Errorf("MEMORY_LIMIT=200Mi: %d, %v", cfg.MemoryLimit, err)
	}
	if cfg, err := parse([]string{"--memory-limit=off"}); err != nil || cfg.MemoryLimit != server.MemoryLimitOff {
		t.Errorf("--memory-limit=off: %d, %v", cfg.MemoryLimit, err)
	}
	if _, err := parse([]string{"extra"}); err == nil {
		t.Error("positional argument accepted")
	}
}
