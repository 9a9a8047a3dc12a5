package node

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/zds"
	"github.com/weftmesh/weft/ztunnel/proxy"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunServesAndDrains runs ztunnel without a control plane: it must
// serve admin, metrics and readiness (not ready), connect to the node
// agent, and stop cleanly when its context ends.
func TestRunServesAndDrains(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, identitytest.NewCA("root").RootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	agent, err := zds.Listen(filepath.Join(dir, "ztunnel.sock"))
	if err != nil {
		t.Skipf("zds socket: %v", err)
	}
	defer func() { _ = agent.Close() }()

	cfg := Defaults()
	cfg.XDSAddress, cfg.CAAddress = "127.0.0.1:1", "127.0.0.1:1"
	cfg.RootCertFile, cfg.TokenFile, cfg.NodeName, cfg.ZDSSocket = root, token, "node-1", agent.Path()
	cfg.AdminAddr, cfg.MetricsAddr, cfg.ReadinessAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	cfg.DrainTimeout = 2 * time.Second
	cfg.Log.Output = io.Discard

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	}()

	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	conn, err := agent.Accept(actx)
	if err != nil {
		t.Fatalf("ztunnel did not connect to the node agent: %v", err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.RecvHello(actx); err != nil {
		t.Fatal(err)
	}

	if code, body := httpGet(t, "http://"+cfg.ReadinessAddr+"/healthz/ready"); code != 503 || !strings.Contains(body, "snapshot") {
		t.Errorf("readiness %d %q", code, body)
	}
	code, body := httpGet(t, "http://"+cfg.AdminAddr+"/config_dump")
	if code != 200 {
		t.Fatalf("config_dump %d", code)
	}
	var dump map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workloads", "services", "policies", "certificates", "workloadState", "connections", "config"} {
		if _, ok := dump[k]; !ok {
			t.Errorf("config_dump lacks %q", k)
		}
	}
	if code, body := httpGet(t, "http://"+cfg.MetricsAddr+"/stats/prometheus"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics %d", code)
	}
}

func TestValidate(t *testing.T) {
	cfg := Defaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "node-name") {
		t.Errorf("missing node name: %v", err)
	}
	cfg.NodeName = "n"
	cfg.XDSAddress = "nohost"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "xds-address") {
		t.Errorf("bad xds address: %v", err)
	}
	cfg = Defaults()
	cfg.NodeName = "n"
	if cfg.MaxConnsPerPod != proxy.DefaultMaxConnsPerPod || cfg.MaxConnsPerNode != proxy.DefaultMaxConnsPerNode {
		t.Errorf("default caps %d/%d, want the proxy's %d/%d", cfg.MaxConnsPerPod, cfg.MaxConnsPerNode, proxy.DefaultMaxConnsPerPod, proxy.DefaultMaxConnsPerNode)
	}
	for _, bad := range [][2]int{{0, 10}, {10, 0}, {-1, 10}} {
		cfg.MaxConnsPerPod, cfg.MaxConnsPerNode = bad[0], bad[1]
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max-connections-per-pod") {
			t.Errorf("caps %v: %v, want an error naming the settings", bad, err)
		}
	}
}
