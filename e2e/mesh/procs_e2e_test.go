//go:build e2e

package mesh_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/e2e/lab"
)

// chaosBins are the binaries the chaos and attack tests run from the host
// inside pods' network namespaces (no image needed): weft-probe.
var chaosBins = []string{"weft-probe"}

var probeBuild struct {
	once sync.Once
	path string
	err  error
}

// probeBin builds cmd/weft-probe once per test binary and returns its path.
func (e *meshEnv) probeBin(t *testing.T) string {
	t.Helper()
	probeBuild.once.Do(func() {
		dir := filepath.Join(e.root, "_output", "mesh-e2e", "probe")
		cmd := exec.Command("go", "build", "-trimpath", "-o", dir+"/", "./cmd/"+chaosBins[0])
		cmd.Dir = e.root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeBuild.err = fmt.Errorf("go build weft-probe: %w\n%s", err, out)
			return
		}
		probeBuild.path = filepath.Join(dir, chaosBins[0])
	})
	if probeBuild.err != nil {
		t.Fatal(probeBuild.err)
	}
	return probeBuild.path
}

// usage is what one component process holds.
type usage struct {
	PID        int
	Goroutines int
	FDs        int
	RSSKiB     int
}

func (u usage) String() string {
	return fmt.Sprintf("pid %d: %d goroutines, %d fds, %d MiB RSS", u.PID, u.Goroutines, u.FDs, u.RSSKiB/1024)
}

// podPIDs returns the processes of this lab running binary exe in pod p's
// network namespace (found through /proc: same netns inode, same binary).
func (e *meshEnv) podPIDs(ctx context.Context, p corev1.Pod, exe string) ([]int, error) {
	path, err := lab.PodNetns(ctx, e.cs, e.c.Plan.Name, p.Namespace, p.Name)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil || ns != want {
			continue
		}
		bin, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || filepath.Base(strings.TrimSuffix(bin, " (deleted)")) != exe {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// usageOf measures the one process of binary exe in pod p: fds and RSS
// from /proc, goroutines from its loopback pprof on pprofPort.
func (e *meshEnv) usageOf(ctx context.Context, t *testing.T, p corev1.Pod, exe string, pprofPort int) usage {
	t.Helper()
	pids, err := e.podPIDs(ctx, p, exe)
	if err != nil || len(pids) != 1 {
		t.Fatalf("%s in %s: want one process, got %v (%v)", exe, p.Name, pids, err)
	}
	u := usage{PID: pids[0]}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", u.PID))
	if err != nil {
		t.Fatalf("fds of %s: %v", p.Name, err)
	}
	u.FDs = len(fds)
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", u.PID))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			u.RSSKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	_ = f.Close()
	out, err := e.exec(ctx, p.Namespace, p.Name, "curl", "-sf", "--max-time", "5", fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", pprofPort))
	if err != nil {
		t.Fatalf("goroutines of %s: %v", p.Name, err)
	}
	first, _, _ := strings.Cut(out, "\n")
	if _, err := fmt.Sscanf(first, "goroutine profile: total %d", &u.Goroutines); err != nil {
		t.Fatalf("goroutines of %s: %q: %v", p.Name, first, err)
	}
	return u
}

// component is one kind of Weft process whose usage the chaos test checks.
type component struct {
	selector  string // in weft-system
	exe       string
	pprofPort int
}

var checkedComponents = []component{
	{"app=ztunnel", "ztunnel", 15000},
	{"app=istiod-lite", "istiod-lite", 9876},
}

// usages measures every pod of every checked component, keyed by
// "<exe>@<node>".
func (e *meshEnv) usages(ctx context.Context, t *testing.T) map[string]usage {
	t.Helper()
	out := map[string]usage{}
	for _, c := range checkedComponents {
		for _, p := range e.readyPods(ctx, t, "weft-system", c.selector, 1) {
			key := c.exe + "@" + p.Spec.NodeName
			if _, dup := out[key]; dup {
				key += "/" + p.Name
			}
			out[key] = e.usageOf(ctx, t, p, c.exe, c.pprofPort)
		}
	}
	return out
}

// killAll sends SIGKILL to every process of binary exe in the pods of
// weft-system matching selector (on node, when node is not empty), as a
// crash would, and returns how many it killed.
func (e *meshEnv) killAll(ctx context.Context, t *testing.T, selector, exe, node string) int {
	t.Helper()
	n := 0
	for _, p := range e.readyPods(ctx, t, "weft-system", selector, 1) {
		if node != "" && p.Spec.NodeName != node {
			continue
		}
		pids, err := e.podPIDs(ctx, p, exe)
		if err != nil {
			t.Logf("find %s in %s: %v", exe, p.Name, err)
			continue
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Logf("kill %s pid %d: %v", p.Name, pid, err)
				continue
			}
			n++
		}
	}
	return n
}
