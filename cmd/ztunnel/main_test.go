package main

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Setenv("NODE_NAME", "node-1")
	t.Setenv("DRAIN_TIMEOUT", "7s")
	cfg, err := parse([]string{"--xds-address", "istiod:15010", "--xds-plaintext", "--instance-ip", "10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName != "node-1" || cfg.XDSAddress != "istiod:15010" || !cfg.XDSPlaintext || cfg.DrainTimeout != 7*time.Second || cfg.InstanceIP.String() != "10.0.0.9" {
		t.Errorf("cfg = %+v", cfg)
	}
	t.Setenv("NODE_NAME", "")
	if _, err := parse(nil); err == nil || !strings.Contains(err.Error(), "node-name") {
		t.Errorf("missing node name: %v", err)
	}
	t.Setenv("NODE_NAME", "n")
	if _, err := parse([]string{"--admin-address", "0.0.0.0:15000"}); err == nil || !strings.Contains(err.Error(), "localhost") {
		t.Errorf("public admin address: %v", err)
	}
	if _, err := parse([]string{"--instance-ip", "10.0.0.300"}); err == nil || !strings.Contains(err.Error(), "instance-ip") {
		t.Errorf("bad instance ip: %v", err)
	}
	if cfg, err := parse([]string{"--release-pages-after", "0"}); err != nil || cfg.ReleasePagesAfter != 0 {
		t.Errorf("--release-pages-after 0 (disabled): %v, %v", cfg.ReleasePagesAfter, err)
	}
	if _, err := parse([]string{"--release-pages-after", "-1s"}); err == nil || !strings.Contains(err.Error(), "release-pages-after") {
		t.Errorf("negative release-pages-after: %v", err)
	}
	t.Setenv("DRAIN_TIMEOUT", "30")
	if _, err := parse(nil); err == nil || !strings.Contains(err.Error(), "$DRAIN_TIMEOUT") {
		t.Errorf("DRAIN_TIMEOUT without a unit: %v", err)
	}
}
