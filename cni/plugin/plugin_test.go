package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftmesh/weft/cni/agentapi"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weft-cni-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for name, pkg := range map[string]string{
		"weft-cni":    "github.com/weftmesh/weft/cmd/weft-cni",
		"fakeprimary": "./testdata/fakeprimary",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			_ = os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// fakeAgent serves agentapi on a unix socket.
type fakeAgent struct {
	mu       sync.Mutex
	requests []string // "add demo/web", "del ...", "check ..."
	enrolled bool
	delay    time.Duration
	fail     string
}

func (a *fakeAgent) handler(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req agentapi.PodRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		a.mu.Lock()
		a.requests = append(a.requests, fmt.Sprintf("%s %s/%s %s %v", kind, req.PodNamespace, req.PodName, req.Netns, req.IPs))
		enrolled, delay, fail := a.enrolled, a.delay, a.fail
		a.mu.Unlock()
		time.Sleep(delay)
		if fail != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(agentapi.ErrorResponse{Error: fail})
			return
		}
		_ = json.NewEncoder(w).Encode(agentapi.AddResponse{Enrolled: enrolled})
	}
}

func (a *fakeAgent) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.requests...)
}

type env struct {
	dir        string
	socket     string
	enrollment string
	logFile    string
	agent      *fakeAgent
	cni        *libcni.CNIConfig
}

func newEnv(t *testing.T, agentUp bool) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		dir:        dir,
		socket:     filepath.Join(dir, "agent.sock"),
		enrollment: filepath.Join(dir, "enrollment.json"),
		logFile:    filepath.Join(dir, "log", "weft-cni.log"),
		agent:      &fakeAgent{},
		cni:        libcni.NewCNIConfigWithCacheDir([]string{binDir}, filepath.Join(dir, "cache"), nil),
	}
	if agentUp {
		l, err := net.Listen("unix", e.socket)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle(agentapi.PathAdd, e.agent.handler("add"))
		mux.Handle(agentapi.PathDel, e.agent.handler("del"))
		mux.Handle(agentapi.PathCheck, e.agent.handler("check"))
		srv := &http.Server{Handler: mux}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return e
}

func (e *env) conflist(t *testing.T, version string, extra string) *libcni.NetworkConfigList {
	t.Helper()
	s := fmt.Sprintf(`{
  "cniVersion": %q,
  "name": "k8s-pod-network",
  "plugins": [
    {"type": "fakeprimary"},
    {"type": "weft-cni", "agentSocket": %q, "enrollmentFile": %q, "logFile": %q, "addTimeout": "5s"%s}
  ]
}`, version, e.socket, e.enrollment, e.logFile, extra)
	l, err := libcni.ConfListFromBytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func rt(ns string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: "c0ffee",
		NetNS:       "/var/run/netns/fake-pod",
		IfName:      "eth0",
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", ns},
			{"K8S_POD_NAME", "web"},
			{"K8S_POD_INFRA_CONTAINER_ID", "c0ffee"},
		},
	}
}

func resultJSON(t *testing.T, r types.Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := r.PrintTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// wantResult are fragments of the primary plugin's result.
var wantResult = []string{`"address": "10.88.0.5/24"`, `"gateway": "10.88.0.1"`, `"name": "eth0"`, `"mac": "0a:58:0a:58:00:05"`}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestAddPassesResultThrough(t *testing.T) {
	for _, enrolled := range []bool{false, true} {
		t.Run(fmt.Sprintf("enrolled=%v", enrolled), func(t *testing.T) {
			e := newEnv(t, true)
			e.agent.enrolled = enrolled
			if enrolled {
				e.agent.delay = 200 * time.Millisecond
			}
			start := time.Now()
			res, err := e.cni.AddNetworkList(context.Background(), e.conflist(t, "1.0.0", ""), rt("demo"))
			if err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if enrolled && time.Since(start) < 200*time.Millisecond {
				t.Fatal("ADD returned before the agent answered")
			}
			if got := resultJSON(t, res); !containsAll(got, wantResult) {
				t.Fatalf("result was changed:\n%s", got)
			}
			if got := e.agent.got(); len(got) != 1 || got[0] != "add demo/web /var/run/netns/fake-pod [10.88.0.5]" {
				t.Fatalf("agent requests = %q", got)
			}
			if b, err := os.ReadFile(e.logFile); err != nil || !bytes.Contains(b, []byte("agent answered")) {
				t.Fatalf("log file: %v %s", err, b)
			}
		})
	}
}

func TestAddOlderSpecVersion(t *testing.T) {
	e := newEnv(t, true)
	res, err := e.cni.AddNetworkList(context.Background(), e.conflist(t, "0.4.0", ""), rt("demo"))
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if res.Version() != "0.4.0" {
		t.Fatalf("result version %s", res.Version())
	}
}

func TestAddAgentError(t *testing.T) {
	e := newEnv(t, true)
	e.agent.fail = "no ztunnel connected"
	_, err := e.cni.AddNetworkList(context.Background(), e.conflist(t, "1.0.0", ""), rt("demo"))
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater || !strings.Contains(cniErr.Msg, "no ztunnel connected") {
		t.Fatalf("err = %#v", err)
	}
}

func TestAddAgentUnreachable(t *testing.T) {
	cases := []struct {
		name       string
		enrollment *agentapi.Enrollment
		ns         string
		wantErr    bool
	}{
		{"no enrollment file", nil, "demo", false},
		{"namespace not enrolled", &agentapi.Enrollment{Namespaces: []string{"other"}}, "demo", false},
		{"namespace enrolled", &agentapi.Enrollment{Namespaces: []string{"demo"}}, "demo", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, false)
			if tc.enrollment != nil {
				if err := agentapi.WriteEnrollment(e.enrollment, tc.enrollment); err != nil {
					t.Fatal(err)
				}
			}
			_, err := e.cni.AddNetworkList(context.Background(), e.conflist(t, "1.0.0", ""), rt(tc.ns))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			var cniErr *types.Error
			if tc.wantErr && (!errors.As(err, &cniErr) || cniErr.Code != types.ErrTryAgainLater || !strings.Contains(cniErr.Msg, "unreachable")) {
				t.Fatalf("err = %#v", err)
			}
		})
	}
}

func TestDelCheckStatus(t *testing.T) {
	e := newEnv(t, true)
	e.agent.enrolled = true
	list := e.conflist(t, "1.1.0", "")
	if _, err := e.cni.AddNetworkList(context.Background(), list, rt("demo")); err != nil {
		t.Fatal(err)
	}
	if err := e.cni.CheckNetworkList(context.Background(), list, rt("demo")); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	if err := e.cni.GetStatusNetworkList(context.Background(), list); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	if err := e.cni.DelNetworkList(context.Background(), list, rt("demo")); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	got := e.agent.got()
	if len(got) != 3 || !strings.HasPrefix(got[1], "check demo/web") || !strings.HasPrefix(got[2], "del demo/web") {
		t.Fatalf("agent requests = %q", got)
	}

	// DEL succeeds with the agent gone.
	down := newEnv(t, false)
	if err := down.cni.DelNetworkList(context.Background(), down.conflist(t, "1.0.0", ""), rt("demo")); err != nil {
		t.Fatalf("DEL with agent down: %v", err)
	}
}

func TestVersion(t *testing.T) {
	e := newEnv(t, false)
	info, err := e.cni.GetVersionInfo(context.Background(), "weft-cni")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(info.SupportedVersions(), ","), "1.0.0") {
		t.Fatalf("supported versions %v", info.SupportedVersions())
	}
}

// runRaw runs the plugin binary directly with stdin and CNI_* env.
func runRaw(t *testing.T, command string, stdin []byte, extraEnv ...string) (stdout []byte, exitCode int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "weft-cni"))
	cmd.Env = append([]string{
		"CNI_COMMAND=" + command,
		"CNI_CONTAINERID=c0ffee",
		"CNI_NETNS=/var/run/netns/fake-pod",
		"CNI_IFNAME=eth0",
		"CNI_PATH=" + binDir,
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web",
	}, extraEnv...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return out.Bytes(), cmd.ProcessState.ExitCode()
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, true)
	e.agent.enrolled = true
	prev := `"prevResult": {"cniVersion": "1.0.0", "ips": [{"address": "10.88.0.5/24"}]}`
	cases := []struct {
		name     string
		stdin    string
		wantCode uint
	}{
		{"not json", `{{{ nope`, types.ErrDecodingFailure},
		{"empty", ``, types.ErrDecodingFailure},
		{"no prevResult", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"n","type":"weft-cni","agentSocket":%q}`, e.socket), types.ErrInvalidNetworkConfig},
		{"bad timeout", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"n","type":"weft-cni","agentSocket":%q,"addTimeout":"soon",%s}`, e.socket, prev), types.ErrInvalidNetworkConfig},
		{"bad log level", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"n","type":"weft-cni","agentSocket":%q,"logLevel":"loud",%s}`, e.socket, prev), types.ErrInvalidNetworkConfig},
		{"bad prevResult", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"n","type":"weft-cni","agentSocket":%q,"prevResult":{"ips":"x"}}`, e.socket), types.ErrDecodingFailure},
		{"unsupported version", fmt.Sprintf(`{"cniVersion":"0.1.0","name":"n","type":"weft-cni","agentSocket":%q}`, e.socket), types.ErrIncompatibleCNIVersion},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runRaw(t, "ADD", []byte(tc.stdin))
			if code == 0 {
				t.Fatalf("exit 0 for bad input; stdout %s", out)
			}
			var cniErr types.Error
			if err := json.Unmarshal(out, &cniErr); err != nil {
				t.Fatalf("stdout is not a CNI error JSON: %v: %q", err, out)
			}
			if cniErr.Code != tc.wantCode || cniErr.Msg == "" {
				t.Fatalf("error = %+v, want code %d", cniErr, tc.wantCode)
			}
		})
	}
	if got := e.agent.got(); len(got) != 0 {
		t.Fatalf("bad input reached the agent: %q", got)
	}

	// The same good input succeeds and prints only the result.
	good := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"n","type":"weft-cni","agentSocket":%q,"logFile":%q,%s}`, e.socket, e.logFile, prev)
	out, code := runRaw(t, "ADD", []byte(good))
	if code != 0 {
		t.Fatalf("good input: exit %d: %s", code, out)
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil || res["cniVersion"] != "1.0.0" {
		t.Fatalf("stdout is not just the result: %v %q", err, out)
	}
}

// The plugin binary must stay small: no client-go, no gRPC.
func TestNoHeavyDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/weftmesh/weft/cmd/weft-cni").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "google.golang.org/grpc") || strings.HasPrefix(dep, "google.golang.org/protobuf") {
			t.Errorf("weft-cni depends on %s", dep)
		}
	}
}
