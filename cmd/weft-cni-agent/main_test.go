package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunArgs(t *testing.T) {
	ctx := context.Background()
	t.Setenv("NODE_NAME", "")
	cases := []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"bogus"}, "unknown command"},
		{[]string{"agent"}, "node name is required"},
		{[]string{"agent", "--node-name", "n1", "--iptables-mode", "bpf"}, "iptables mode"},
		{[]string{"install", "--plugin-add-timeout", "soon"}, "--plugin-add-timeout"},
	}
	for _, tc := range cases {
		err := run(ctx, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v, want error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestInstallOnceAndUninstall(t *testing.T) {
	d := t.TempDir()
	conf := filepath.Join(d, "net.d")
	_ = os.MkdirAll(conf, 0o755)
	_ = os.WriteFile(filepath.Join(conf, "10-k.conflist"), []byte(`{"cniVersion":"1.0.0","name":"k","plugins":[{"type":"ptp"}]}`), 0o644)
	_ = os.WriteFile(filepath.Join(d, "weft-cni"), []byte("bin"), 0o755)
	flags := []string{"--plugin-binary", filepath.Join(d, "weft-cni"), "--cni-bin-dir", filepath.Join(d, "bin"), "--cni-conf-dir", conf, "--log-format", "text"}
	if err := run(context.Background(), append([]string{"install", "--once"}, flags...)); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(conf, "10-k.conflist"))
	if !strings.Contains(string(b), `"weft-cni"`) {
		t.Fatalf("not inserted:\n%s", b)
	}
	if err := run(context.Background(), append([]string{"uninstall"}, flags...)); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(conf, "10-k.conflist"))
	if strings.Contains(string(b), `"weft-cni"`) {
		t.Fatalf("not removed:\n%s", b)
	}
}
