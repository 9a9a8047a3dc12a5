package install

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
)

const primaryList = `{
  "cniVersion": "1.0.0",
  "name": "k8s-pod-network",
  "disableCheck": false,
  "plugins": [
    {"type": "ptp", "ipMasq": true, "ipam": {"type": "host-local", "subnet": "10.244.1.0/24"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`

var settings = Settings{AgentSocket: "/var/run/weft/cni-agent.sock", EnrollmentFile: "/var/run/weft/enrollment.json", LogFile: "/var/log/weft-cni.log", AddTimeout: "30s"}

type node struct {
	bin, conf, src string
	inst           *Installer
}

func newNode(t *testing.T) *node {
	t.Helper()
	d := t.TempDir()
	n := &node{bin: filepath.Join(d, "bin"), conf: filepath.Join(d, "net.d"), src: filepath.Join(d, "weft-cni")}
	if err := os.MkdirAll(n.conf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.src, []byte("#!plugin v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	inst, err := New(Config{PluginBinary: n.src, BinDir: n.bin, ConfDir: n.conf, Settings: settings, PollInterval: 10 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	n.inst = inst
	return n
}

func (n *node) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(n.conf, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func types(t *testing.T, path string) []string {
	t.Helper()
	l, err := libcni.ConfListFromFile(path)
	if err != nil {
		t.Fatalf("libcni cannot load %s: %v", path, err)
	}
	var out []string
	for _, p := range l.Plugins {
		out = append(out, p.Network.Type)
	}
	return out
}

func TestInstallConflist(t *testing.T) {
	n := newNode(t)
	path := n.write(t, "10-ptp.conflist", primaryList)
	n.write(t, "20-other.conflist", `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}`)

	got, err := n.inst.Install()
	if err != nil {
		t.Fatal(err)
	}
	if got != path {
		t.Fatalf("updated %s, want %s", got, path)
	}
	if diff := cmp.Diff([]string{"ptp", "portmap", "weft-cni"}, types(t, path)); diff != "" {
		t.Fatalf("plugins (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(filepath.Join(n.conf, "20-other.conflist")); string(b) != `{"cniVersion":"1.0.0","name":"x","plugins":[{"type":"bridge"}]}` {
		t.Fatal("a non-primary config was touched")
	}
	var top map[string]any
	b, _ := os.ReadFile(path)
	_ = json.Unmarshal(b, &top)
	if top["disableCheck"] != false || top["name"] != "k8s-pod-network" {
		t.Fatalf("top-level fields lost: %v", top)
	}
	plugins := top["plugins"].([]any)
	if diff := cmp.Diff(map[string]any{"type": "ptp", "ipMasq": true, "ipam": map[string]any{"type": "host-local", "subnet": "10.244.1.0/24"}}, plugins[0]); diff != "" {
		t.Fatalf("primary plugin changed:\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"type": "weft-cni", "agentSocket": settings.AgentSocket, "enrollmentFile": settings.EnrollmentFile, "logFile": settings.LogFile, "addTimeout": "30s"}, plugins[2]); diff != "" {
		t.Fatalf("weft-cni entry:\n%s", diff)
	}
	if bin, err := os.ReadFile(filepath.Join(n.bin, "weft-cni")); err != nil || string(bin) != "#!plugin v1" {
		t.Fatalf("binary: %q %v", bin, err)
	}

	// Idempotent: nothing is rewritten.
	st1, _ := os.Stat(path)
	time.Sleep(10 * time.Millisecond)
	if _, err := n.inst.Install(); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(path)
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatal("second Install rewrote the config")
	}
	again, _ := os.ReadFile(path)
	if string(again) != string(b) {
		t.Fatal("second Install changed the config")
	}

	// New settings replace the entry in place.
	n.inst.cfg.Settings.LogLevel = "debug"
	if _, err := n.inst.Install(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ptp", "portmap", "weft-cni"}, types(t, path)); diff != "" {
		t.Fatalf("plugins after settings change:\n%s", diff)
	}

	for range 2 {
		if err := n.inst.Uninstall(); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"ptp", "portmap"}, types(t, path)); diff != "" {
		t.Fatalf("plugins after Uninstall:\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(n.bin, "weft-cni")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("binary left: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(n.conf, ".weft-tmp-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temp files left: %v", leftovers)
	}
}

func TestInstallSingleConf(t *testing.T) {
	n := newNode(t)
	old := n.write(t, "10-bridge.conf", `{"cniVersion":"0.4.0","name":"net","type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}}`)
	path, err := n.inst.Install()
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(n.conf, "10-bridge.conflist") {
		t.Fatalf("path %s", path)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the .conf was left beside the new .conflist")
	}
	if diff := cmp.Diff([]string{"bridge", "weft-cni"}, types(t, path)); diff != "" {
		t.Fatal(diff)
	}
	l, _ := libcni.ConfListFromFile(path)
	if l.Name != "net" || l.CNIVersion != "0.4.0" {
		t.Fatalf("name/version lost: %s %s", l.Name, l.CNIVersion)
	}
}

func TestPrimarySelection(t *testing.T) {
	n := newNode(t)
	if _, err := n.inst.Install(); !errors.Is(err, ErrNoPrimary) {
		t.Fatalf("empty dir err = %v", err)
	}
	n.write(t, "05-notes.txt", "hello")
	n.write(t, "07-broken.conflist", "{not json")
	n.write(t, "30-b.conflist", primaryList)
	n.write(t, "20-a.conflist", primaryList)
	got, err := n.inst.Install()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(got) != "20-a.conflist" {
		t.Fatalf("picked %s", got)
	}
	n.inst.cfg.ConfFile = "30-b.conflist"
	if got, _ := n.inst.Install(); filepath.Base(got) != "30-b.conflist" {
		t.Fatalf("ConfFile ignored: %s", got)
	}
}

func TestRunReinserts(t *testing.T) {
	n := newNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	var readyState atomic.Bool
	done := make(chan error, 1)
	go func() { done <- n.inst.Run(ctx, readyState.Store) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	path := filepath.Join(n.conf, "10-ptp.conflist")
	hasWeft := func() bool {
		l, err := libcni.ConfListFromFile(path)
		if err != nil {
			return false
		}
		return l.Plugins[len(l.Plugins)-1].Network.Type == "weft-cni"
	}
	time.Sleep(30 * time.Millisecond)
	if readyState.Load() {
		t.Fatal("ready without a primary config")
	}
	// The primary CNI appears, then rewrites its file twice.
	n.write(t, "10-ptp.conflist", primaryList)
	waitFor("insertion", func() bool { return hasWeft() && readyState.Load() })
	for range 2 {
		_ = writeAtomic(path, []byte(primaryList), 0o644)
		waitFor("re-insertion", hasWeft)
	}
	if diff := cmp.Diff([]string{"ptp", "portmap", "weft-cni"}, types(t, path)); diff != "" {
		t.Fatal(diff)
	}
}

func TestValidate(t *testing.T) {
	if _, err := New(Config{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("empty config accepted")
	}
	if _, err := New(Config{PluginBinary: "x", BinDir: "b", ConfDir: "c", ConfFile: "../etc/x"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("conf file outside the dir accepted")
	}
}
