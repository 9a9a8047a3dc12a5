package main

import (
	"strings"
	"testing"
	"time"
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
	} {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv(tt.env, tt.value)
			if _, err := parse(nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parse with %s=%q: error %v, want one naming %s", tt.env, tt.value, err, tt.want)
			}
		})
	}
	if _, err := parse([]string{"extra"}); err == nil {
		t.Error("positional argument accepted")
	}
}
