package kubelet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network and mount namespaces)")
	}
}

func randSuffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func shimPath(t *testing.T) string {
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newTestNetns creates a netns for the test, removed on cleanup.
func newTestNetns(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, "netns", name)
	if err := createNetns(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeNetns(p); err != nil {
			t.Error(err)
		}
	})
	return p
}

func writeSpec(t *testing.T, dir string, spec shimSpec) string {
	t.Helper()
	scratch := filepath.Join(dir, "scratch-"+randSuffix())
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	spec.Scratch = scratch
	b, _ := json.Marshal(spec)
	p := filepath.Join(dir, "spec-"+randSuffix()+".json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestShimRun starts a container through the shim in a fresh netns with a
// volume at a path that does not exist on the host, a file over
// /etc/resolv.conf, and a hostname; then execs into it.
func TestShimRun(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	ns := newTestNetns(t, dir, "wt-kubelet-"+randSuffix())
	empty := filepath.Join(dir, "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(dir, "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "token"), []byte("tok"), 0o644); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 10.96.0.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	top := "/wt-kubelet-" + randSuffix()
	target := top + "/secrets/sa"
	script := "cat " + target + "/token; echo; cat /etc/resolv.conf; hostname; ls /sys/class/net; echo $FOO; " +
		"echo ready > /tmp/.wt-kubelet-ignore 2>/dev/null; exec sleep 30"
	spec := shimSpec{
		NetNS: ns, Hostname: "pod-a",
		Mounts: []shimMount{
			// An empty dir over the top of the test's own dir first: later
			// sources below it must still be found.
			{Source: empty, Target: "/" + strings.Split(dir, "/")[1]},
			{Source: vol, Target: target, ReadOnly: true}, {Source: resolv, Target: "/etc/resolv.conf"},
		},
		Path: "/bin/sh", Args: []string{"sh", "-c", script}, Env: []string{"FOO=bar", "PATH=/usr/bin:/bin"},
	}
	logPath := filepath.Join(dir, "log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logf.Close() }() // only the shim writes to it
	cmd := exec.Command(shimPath(t), shimCommand, "run", writeSpec(t, dir, spec))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = shimProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // Wait reports the kill
	var got string
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(got, "bar") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		b, _ := os.ReadFile(logPath)
		got = string(b)
	}
	for _, want := range []string{"tok\n", "nameserver 10.96.0.10", "pod-a\n", "bar"} {
		if !strings.Contains(got, want) {
			t.Errorf("container output lacks %q:\n%s", want, got)
		}
	}
	if _, err := os.Stat(top); err == nil {
		t.Errorf("%s leaked onto the host", top)
	}
	if h, _ := os.Hostname(); h == "pod-a" {
		t.Error("hostname leaked onto the host")
	}
	// exec into the running container sees its mounts and env.
	x := exec.Command(shimPath(t), shimCommand, "exec", strconv.Itoa(cmd.Process.Pid), "--", "sh", "-c", "cat "+target+"/token; echo \" $FOO\"; hostname; touch "+target+"/x 2>&1 || echo ro")
	b, err := x.CombinedOutput()
	if err != nil {
		t.Fatalf("exec: %v: %s", err, b)
	}
	if s := string(b); !strings.HasPrefix(s, "tok bar\npod-a\n") || !strings.Contains(s, "ro") {
		t.Errorf("exec output = %q", s)
	}
	x = exec.Command(shimPath(t), shimCommand, "exec", strconv.Itoa(cmd.Process.Pid), "--", "sh", "-c", "exit 3")
	if err := x.Run(); err == nil || x.ProcessState.ExitCode() != 3 {
		t.Errorf("exec exit code = %v, want 3", err)
	}
}

// TestCNIAddDel attaches a pod netns to a node netns with the real ptp,
// host-local and loopback plugins through libcni.
func TestCNIAddDel(t *testing.T) {
	requireRoot(t)
	bin := cniBinDir(t)
	dir := t.TempDir()
	node := newTestNetns(t, dir, "wt-kubelet-node-"+randSuffix())
	pod := newTestNetns(t, dir, "wt-kubelet-pod-"+randSuffix())
	confDir := filepath.Join(dir, "net.d")
	writeConflist(t, confDir, "10-ptp.conflist", filepath.Join(dir, "ipam"), "10.250.7.0/24")
	// Through the shim, as the kubelet runs plugins in the lab.
	view, err := newNodeViewExec(shimPath(t), filepath.Join(dir, "root"), filepath.Join(dir, "cni-scratch"))
	if err != nil {
		t.Fatal(err)
	}
	cni := newCNINetwork(confDir, bin, filepath.Join(dir, "cache"), view)
	pn := podNetwork{ContainerID: sandboxID("uid-1"), NetNS: pod, Namespace: "demo", Name: "p", UID: "uid-1"}
	ctx := context.Background()
	var ips []string
	var conf []byte
	err = inNetns(node, func() error {
		var err error
		ips, conf, err = cni.Add(ctx, pn)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ips) != 1 || !strings.HasPrefix(ips[0], "10.250.7.") {
		t.Fatalf("ips = %v", ips)
	}
	if err := inNetns(node, func() error { return cni.Check(ctx, pn, conf) }); err != nil {
		t.Errorf("check: %v", err)
	}
	// A later, lexically earlier conflist wins for the next ADD.
	writeConflist(t, confDir, "05-other.conflist", filepath.Join(dir, "ipam2"), "10.250.8.0/24")
	list, err := cni.loadConfList()
	if err != nil || !strings.Contains(string(list.Bytes), "10.250.8.0") {
		t.Errorf("conf dir not re-read: %v", err)
	}
	if err := inNetns(node, func() error { return cni.Del(ctx, pn, conf) }); err != nil {
		t.Fatal(err)
	}
	if err := inNetns(node, func() error { return cni.Del(ctx, pn, conf) }); err != nil {
		t.Errorf("second del should succeed: %v", err)
	}
}

func cniBinDir(t *testing.T) string {
	t.Helper()
	for _, d := range []string{os.Getenv("WEFT_CNI_BIN_DIR"), "../../../_output/k8s"} {
		if d == "" {
			continue
		}
		ok := true
		for _, p := range []string{"ptp", "host-local", "loopback"} {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				ok = false
			}
		}
		if ok {
			abs, _ := filepath.Abs(d)
			return abs
		}
	}
	t.Skip("CNI plugins ptp, host-local, loopback not built (set WEFT_CNI_BIN_DIR)")
	return ""
}

func writeConflist(t *testing.T, dir, name, ipamDir, subnet string) {
	t.Helper()
	writeConflistWith(t, dir, name, ipamDir, subnet, `,
 {"type":"loopback"}`)
}

func writeConflistWith(t *testing.T, dir, name, ipamDir, subnet, more string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := `{"cniVersion":"1.0.0","name":"lab","plugins":[
 {"type":"ptp","ipMasq":false,"ipam":{"type":"host-local","dataDir":"` + ipamDir + `","ranges":[[{"subnet":"` + subnet + `"}]],"routes":[{"dst":"0.0.0.0/0"}]}}` + more + `]}`
	if err := os.WriteFile(filepath.Join(dir, name), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestNetnsPropagation checks that a pod netns created after a container
// mounted the node's netns view dir is visible in it (HostToContainer),
// which a CNI node agent entering pod namespaces relies on.
func TestNetnsPropagation(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	k := &kubelet{netnsView: filepath.Join(dir, "view")}
	if err := k.setupNetnsView(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releaseSharedMount(k.netnsView) })
	first := newTestNetns(t, dir, "wt-kubelet-a-"+randSuffix())
	view := func(p string) string { return filepath.Join(k.netnsView, filepath.Base(p)) }
	if err := bindNetns(first, view(first)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeNetns(view(first)); err != nil {
			t.Error(err)
		}
	})
	spec := shimSpec{
		Mounts: []shimMount{{Source: k.netnsView, Target: "/var/run/netns"}},
		Path:   "/bin/sleep", Args: []string{"sleep", "30"},
	}
	cmd := exec.Command(shimPath(t), shimCommand, "run", writeSpec(t, dir, spec))
	cmd.SysProcAttr = shimProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // Wait reports the kill
	time.Sleep(300 * time.Millisecond)
	second := newTestNetns(t, dir, "wt-kubelet-b-"+randSuffix())
	if err := bindNetns(second, view(second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := removeNetns(view(second)); err != nil {
			t.Error(err)
		}
	})
	out, err := exec.Command(shimPath(t), shimCommand, "exec", strconv.Itoa(cmd.Process.Pid), "--",
		"stat", "-f", "-c", "%T", "/var/run/netns/"+filepath.Base(first), "/var/run/netns/"+filepath.Base(second)).CombinedOutput()
	if err != nil {
		t.Fatalf("exec: %v: %s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != "nsfs" || got[1] != "nsfs" {
		t.Errorf("netns files in the container are %q, want nsfs twice", out)
	}
	// A dir with mounts below it is never bound on itself.
	if err := ensureSharedMount(filepath.Dir(first)); err == nil {
		t.Error("ensureSharedMount accepted a dir with netns mounts below it")
	}
}

// TestNodeViewExec runs a fake plugin through the shim: it must see the
// node root's /var/run/weft, /var/run/ztunnel and /var/log, get stdin and
// the environment, and its CNI error must come back typed.
func TestNodeViewExec(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	plugin := filepath.Join(dir, "fake-plugin")
	script := `#!/bin/sh
cat > /var/run/weft/stdin
echo "$CNI_COMMAND" > /var/log/wt-fake-plugin.log
test -d /var/run/ztunnel || exit 9
if [ "$CNI_COMMAND" = DEL ]; then echo '{"code":7,"msg":"boom"}'; exit 1; fi
echo '{"ok":true}'
`
	if err := os.WriteFile(plugin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e, err := newNodeViewExec(shimPath(t), root, filepath.Join(dir, "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	e.stderr = nil
	ctx := context.Background()
	out, err := e.ExecPlugin(ctx, plugin, []byte("conf"), append(os.Environ(), "CNI_COMMAND=ADD"))
	if err != nil || string(out) != "{\"ok\":true}\n" {
		t.Fatalf("ExecPlugin = %q, %v", out, err)
	}
	for path, want := range map[string]string{"var/run/weft/stdin": "conf", "var/log/wt-fake-plugin.log": "ADD\n"} {
		if b, err := os.ReadFile(filepath.Join(root, path)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", path, b, err, want)
		}
	}
	_, err = e.ExecPlugin(ctx, plugin, nil, append(os.Environ(), "CNI_COMMAND=DEL"))
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != 7 || cniErr.Msg != "boom" {
		t.Errorf("failing plugin: err = %v, want code 7 boom", err)
	}
}
