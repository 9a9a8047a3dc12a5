package main

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	env := map[string]string{
		"POD_NAMESPACE": "demo", "SERVICE_ACCOUNT": "waypoint", "GATEWAY_NAME": "waypoint",
		"POD_IP": "10.0.0.9", "DRAIN_TIMEOUT": "7s", "XDS_ADDRESS": "istiod-lite.weft-system.svc:15012",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := parse([]string{"--xds-plaintext", "--sniff-timeout", "250ms"}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PodNamespace != "demo" || cfg.GatewayName != "waypoint" || cfg.PodIP.String() != "10.0.0.9" ||
		cfg.DrainTimeout != 7*time.Second || !cfg.XDSPlaintext || cfg.SniffTimeout != 250*time.Millisecond {
		t.Errorf("cfg = %+v", cfg)
	}
	if got := cfg.ServiceKey(); got != "demo/waypoint.demo.svc.cluster.local" {
		t.Errorf("ServiceKey = %q", got)
	}
	if !cfg.AccessLog {
		t.Error("access log off by default")
	}
	if cfg.ReleasePagesAfter != 10*time.Second {
		t.Errorf("release-pages-after defaults to %s, want 10s", cfg.ReleasePagesAfter)
	}
	env["ACCESS_LOG"] = "false"
	if off, err := parse(nil, lookup); err != nil || off.AccessLog {
		t.Errorf("ACCESS_LOG=false: access log %v, err %v", off.AccessLog, err)
	}
	delete(env, "ACCESS_LOG")
	id, _ := cfg.Identity()
	if id.String() != "spiffe://cluster.local/ns/demo/sa/waypoint" {
		t.Errorf("identity = %s", id)
	}

	tests := []struct {
		name string
		set  map[string]string
		args []string
		want string
	}{
		{"no gateway", map[string]string{"GATEWAY_NAME": ""}, nil, "gateway-name"},
		{"no service account", map[string]string{"SERVICE_ACCOUNT": ""}, nil, "service-account"},
		{"public admin", nil, []string{"--admin-address", "0.0.0.0:15000"}, "localhost"},
		{"bad duration", map[string]string{"DRAIN_TIMEOUT": "30"}, nil, "DRAIN_TIMEOUT"},
		{"bad ip", map[string]string{"POD_IP": "nope"}, nil, "POD_IP"},
		{"negative page release", nil, []string{"--release-pages-after", "-1s"}, "release-pages-after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tt.set {
				e[k] = v
			}
			_, err := parse(tt.args, func(k string) (string, bool) { v, ok := e[k]; return v, ok && v != "" })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
