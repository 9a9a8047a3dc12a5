//go:build linux

package node

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/zds"
)

// idlePods is how many pods the idle-memory test enrolls: about what a
// benchmark node runs (a client or a server pod in each enrolled namespace,
// and a waypoint).
const idlePods = 4

// shipTags are the build tags the released binaries are built with.
// grpcnotrace leaves out golang.org/x/net/trace (grpc's /debug/requests
// pages on http.DefaultServeMux, which Weft never serves): its
// html/template reaches reflect.Value.MethodByName, which makes the linker
// keep every exported method of every linked type, about 4.7 MB of the
// 20 MB binary and 3.2 MiB of ztunnel's idle resident memory.
const shipTags = "grpcnotrace"

// idleRSSBoundKiB bounds ztunnel's resident memory once ready with
// idlePods pods and no traffic, after it has released the executable's
// start-up pages (pkg/exepages; the test sets RELEASE_PAGES_AFTER short and
// waits for the release). Measured at 7.4-8.4 MiB on the 2-core lab
// machine: anonymous 4.1-5.0, the executable's pages 3.3-3.5. Before the
// release it was 18.3-18.9 MiB, of which 14.1 MiB were the executable's
// (package initializers fault in nearly all of it, 64 KiB at a time);
// 22.9 MiB without grpcnotrace. The bound leaves about 2.5 MiB for a busy
// machine and toolchain drift, and fails when the release or the tag is
// lost, or about two megabytes of code or idle heap are added.
const idleRSSBoundKiB = 11 << 10

// memOutEnv names a directory where TestIdleMemory leaves the process's
// smaps, smaps_rollup, status, heap profile, goroutines and metrics, to
// study a regression. GODEBUG=memprofilerate=1 in the environment gives an
// exact heap profile (and, recording every allocation, about 4 MiB more
// resident memory: the bound then fails).
const memOutEnv = "WEFT_ZTUNNEL_MEM_OUT"

// TestIdleMemory builds cmd/ztunnel as the images ship it (static,
// stripped, with shipTags), runs it against a fake istiod and a fake node
// agent that enrolls idlePods pods (each in a network namespace of its own,
// QUIC on as in the DaemonSet), and checks its resident memory once every
// pod is up and has its certificate. It waits for states, never for a time,
// and logs the breakdown (anonymous and file-backed pages, the Go runtime's
// memory statistics).
func TestIdleMemory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if testing.Short() {
		t.Skip("builds the ztunnel binary")
	}
	dir := t.TempDir()
	bin := buildZtunnel(t, dir)

	cert, root := servingCert(t, dir)
	fake := &fakeIstiod{ca: identitytest.NewCA("mesh-root")}
	for i := range idlePods {
		name := fmt.Sprintf("p%d", i)
		fake.workloads = append(fake.workloads, &wl.Workload{Uid: "c//Pod/demo/" + name, Name: name, Namespace: "demo",
			ServiceAccount: "app", Addresses: [][]byte{netip.AddrFrom4([4]byte{10, 9, 0, byte(i + 1)}).AsSlice()},
			TunnelProtocol: wl.TunnelProtocol_HBONE})
	}
	addr := serveFakeIstiod(t, cert, fake)
	token := writeToken(t, dir)
	agent, err := zds.Listen(filepath.Join(dir, "ztunnel.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Close() })

	admin, metrics, readiness := freeAddr(t), freeAddr(t), freeAddr(t)
	// The process writes its log to a file of its own, which the test
	// reads while it runs.
	logs, err := os.Create(filepath.Join(dir, "ztunnel.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logs.Close() }()
	logText := func() string { b, _ := os.ReadFile(logs.Name()); return string(b) }
	cmd := exec.Command(bin)
	// Killed with the test, also when a timeout panic skips the cleanup
	// (it holds the pods' network namespaces and its ports).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(),
		"XDS_ADDRESS="+addr, "CA_ADDRESS="+addr, "ROOT_CERT="+root, "TOKEN_FILE="+token,
		"ZDS_SOCKET="+agent.Path(), "NODE_NAME=node-1", "POD_NAME=ztunnel-mem", "POD_NAMESPACE=weft-system",
		"INSTANCE_IP=10.0.0.5", "ADMIN_ADDRESS="+admin, "METRICS_ADDRESS="+metrics, "READINESS_ADDRESS="+readiness,
		"DRAIN_TIMEOUT=2s", "HBONE_QUIC=true", "RELEASE_PAGES_AFTER=200ms")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("ztunnel output:\n%s", logText())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := agent.Accept(ctx)
	if err != nil {
		t.Fatalf("ztunnel did not connect to the node agent: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.RecvHello(ctx); err != nil {
		t.Fatal(err)
	}
	send := func(req *zdsapi.WorkloadRequest, f *os.File) {
		t.Helper()
		if err := conn.Request(ctx, req, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range fake.workloads {
		pod, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pod.Close() })
		if err := pod.LoopbackUp(); err != nil {
			t.Fatal(err)
		}
		send(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: "uid-" + w.GetName(),
			WorkloadInfo: &zdsapi.WorkloadInfo{Name: w.GetName(), Namespace: w.GetNamespace(), ServiceAccount: w.GetServiceAccount()}}}}, pod.File())
	}
	send(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}}, nil)

	waitUntil(t, func() bool {
		code, _ := httpGet(t, "http://"+readiness+"/healthz/ready")
		return code == 200
	})
	waitUntil(t, func() bool {
		_, body := httpGet(t, "http://"+admin+"/config_dump")
		return strings.Count(body, `"state": "up"`) == idlePods && strings.Contains(body, `"state": "Available"`)
	})
	// As in a node that has settled after its pods started (pkg/exepages).
	waitUntil(t, func() bool { return strings.Contains(logText(), "released the executable's pages") })

	pid := cmd.Process.Pid
	rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := smapsFields(string(rollup))
	out := os.Getenv(memOutEnv)
	if out != "" { // before the scrape, whose buffers would show in the heap
		saveMemoryState(t, out, pid, admin)
	}
	_, metricsBody := httpGet(t, "http://"+metrics+"/metrics")
	var mem []string
	for _, line := range strings.Split(metricsBody, "\n") {
		if strings.HasPrefix(line, "go_memstats_") || strings.HasPrefix(line, "go_goroutines") || strings.HasPrefix(line, "go_threads") {
			mem = append(mem, line)
		}
	}
	t.Logf("idle ztunnel, %d pods: Rss %d KiB (anonymous %d, file %d), Pss %d KiB\n%s", idlePods,
		fields["Rss"], fields["Anonymous"], fields["Rss"]-fields["Anonymous"], fields["Pss"], strings.Join(mem, "\n"))
	if out != "" {
		if err := os.WriteFile(filepath.Join(out, "metrics.txt"), []byte(metricsBody), 0o644); err != nil {
			t.Error(err)
		}
	}
	if fields["Rss"] == 0 {
		t.Fatalf("no Rss in smaps_rollup:\n%s", rollup)
	}
	if fields["Rss"] > idleRSSBoundKiB {
		t.Errorf("idle ztunnel resident memory %d KiB, want at most %d KiB", fields["Rss"], idleRSSBoundKiB)
	}
}

// buildZtunnel builds cmd/ztunnel into dir as the images ship it.
func buildZtunnel(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "ztunnel")
	cmd := exec.Command("go", "build", "-tags="+shipTags, "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/ztunnel")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build ztunnel: %v\n%s", err, b)
	}
	return out
}

// smapsFields reads the "Name: N kB" lines of smaps_rollup, in KiB.
func smapsFields(s string) map[string]int64 {
	m := map[string]int64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[2] == "kB" {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				m[strings.TrimSuffix(f[0], ":")] = v
			}
		}
	}
	return m
}

// saveMemoryState writes what explains the process's memory into dir.
func saveMemoryState(t *testing.T, dir string, pid int, admin string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, f := range []string{"smaps", "smaps_rollup", "status"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
		if err != nil {
			t.Error(err)
			continue
		}
		write(f, b)
	}
	for name, path := range map[string]string{"heap.pb.gz": "/debug/pprof/heap", "goroutine.txt": "/debug/pprof/goroutine?debug=1"} {
		_, body := httpGet(t, "http://"+admin+path)
		write(name, []byte(body))
	}
}
