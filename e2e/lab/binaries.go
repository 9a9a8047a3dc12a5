package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Versions pinned by the tools modules under e2e/lab/k8s. Changing one means
// changing the matching go.mod; the build stamp follows the go.mod files.
const (
	KubernetesVersion = "v1.37.2"
	EtcdVersion       = "v3.6.16"
	CoreDNSVersion    = "v1.14.7"
	CNIPluginsVersion = "v1.10.0"
)

// toolBuild is one `go build` in one tools module.
type toolBuild struct {
	module  string   // directory under e2e/lab/k8s, "" for the Kubernetes module
	out     string   // output file name, or "" to let go build name them (-o dir/)
	ldflags string   // -ldflags value
	pkgs    []string // packages to build
}

func k8sLDFlags() string {
	var b strings.Builder
	b.WriteString("-s -w")
	major, minor := "1", "37"
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitTreeState=clean",
			pkg, KubernetesVersion, pkg, major, pkg, minor, pkg)
	}
	return b.String()
}

func toolBuilds() []toolBuild {
	return []toolBuild{
		{module: "cni", ldflags: "-s -w", pkgs: []string{
			"github.com/containernetworking/plugins/plugins/main/ptp",
			"github.com/containernetworking/plugins/plugins/ipam/host-local",
			"github.com/containernetworking/plugins/plugins/main/loopback",
		}},
		{module: "etcd", out: "etcd", ldflags: "-s -w", pkgs: []string{"go.etcd.io/etcd/server/v3"}},
		{module: "", ldflags: k8sLDFlags(), pkgs: []string{
			"k8s.io/kubernetes/cmd/kube-apiserver",
			"k8s.io/kubernetes/cmd/kube-controller-manager",
			"k8s.io/kubernetes/cmd/kube-scheduler",
			"k8s.io/kubernetes/cmd/kube-proxy",
			"k8s.io/kubernetes/cmd/kubectl",
		}},
		{module: "coredns", out: "coredns", ldflags: "-s -w", pkgs: []string{"github.com/coredns/coredns"}},
	}
}

// Binaries are the absolute paths of everything a lab runs.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler, Proxy, Kubectl, CoreDNS string
	// CNIBinDir holds ptp, host-local and loopback.
	CNIBinDir string
	// WeftLab is the weft-lab binary (kubelet and container shim).
	WeftLab string
	// Echo is the echo sample workload.
	Echo string
}

// RepoRoot walks up from dir to the directory whose go.mod declares the Weft
// module.
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module github.com/weftmesh/weft\n")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("find repository root: no go.mod for github.com/weftmesh/weft above %s", dir)
		}
		d = parent
	}
}

// K8sDir is where EnsureBinaries puts the pinned third-party binaries.
func K8sDir(root string) string { return filepath.Join(root, "_output", "k8s") }

// BinariesAt returns where EnsureBinaries puts everything below root,
// without building anything.
func BinariesAt(root string) Binaries {
	k := K8sDir(root)
	bin := filepath.Join(root, "_output", "lab", "bin")
	return Binaries{
		Etcd:              filepath.Join(k, "etcd"),
		APIServer:         filepath.Join(k, "kube-apiserver"),
		ControllerManager: filepath.Join(k, "kube-controller-manager"),
		Scheduler:         filepath.Join(k, "kube-scheduler"),
		Proxy:             filepath.Join(k, "kube-proxy"),
		Kubectl:           filepath.Join(k, "kubectl"),
		CoreDNS:           filepath.Join(k, "coredns"),
		CNIBinDir:         k,
		WeftLab:           filepath.Join(bin, "weft-lab"),
		Echo:              filepath.Join(bin, "echo"),
	}
}

func (b Binaries) thirdParty() []string {
	return []string{b.Etcd, b.APIServer, b.ControllerManager, b.Scheduler, b.Proxy, b.Kubectl, b.CoreDNS,
		filepath.Join(b.CNIBinDir, "ptp"), filepath.Join(b.CNIBinDir, "host-local"), filepath.Join(b.CNIBinDir, "loopback")}
}

// buildStamp hashes the tools modules' go.mod and go.sum files and the build
// recipe, so a changed pin (or recipe) triggers a rebuild.
func buildStamp(root string) (string, error) {
	h := sha256.New()
	for _, tb := range toolBuilds() {
		for _, f := range []string{"go.mod", "go.sum"} {
			p := filepath.Join(root, "e2e", "lab", "k8s", tb.module, f)
			b, err := os.ReadFile(p)
			if err != nil {
				return "", fmt.Errorf("read tools module file: %w", err)
			}
			_, _ = fmt.Fprintf(h, "%s %d\n", filepath.Join(tb.module, f), len(b)) // a hash never fails a write
			h.Write(b)
		}
		_, _ = fmt.Fprintf(h, "out=%s ldflags=%s pkgs=%v\n", tb.out, tb.ldflags, tb.pkgs)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// EnsureBinaries builds what a lab runs, below root (the repository root):
// the pinned binaries (EnsurePinned) and, always, weft-lab and echo into
// _output/lab/bin, relying on the Go build cache. Build output goes to w
// (may be nil); log may be nil.
func EnsureBinaries(ctx context.Context, root string, w io.Writer, log *slog.Logger) (Binaries, error) {
	bins, err := EnsurePinned(ctx, root, w, log)
	if err != nil {
		return bins, err
	}
	if w == nil {
		w = io.Discard
	}
	if err := goCmd(ctx, root, w, "build", "-o", filepath.Dir(bins.WeftLab)+string(filepath.Separator), "./cmd/weft-lab", "./cmd/echo"); err != nil {
		return bins, err
	}
	return bins, nil
}

// EnsureEcho returns an echo binary for the lab's weft/echo image: the one
// `make build` put in _output/bin if present, otherwise one built into
// _output/lab/bin.
func EnsureEcho(ctx context.Context, root string, w io.Writer) (string, error) {
	if p := filepath.Join(root, "_output", "bin", "echo"); isExecutable(p) {
		return p, nil
	}
	if w == nil {
		w = io.Discard
	}
	out := BinariesAt(root).Echo
	if err := goCmd(ctx, root, w, "build", "-o", out, "./cmd/echo"); err != nil {
		return "", err
	}
	return out, nil
}

// EnsurePinned builds the pinned Kubernetes, etcd, CoreDNS and CNI
// binaries into _output/k8s, only when the tools modules' go.mod/go.sum (or
// the build recipe) changed since the last build; a cold build takes 10+
// minutes on 2 cores (35 measured on a busy one). Concurrent callers
// serialise on a lock file. The returned Binaries' WeftLab and Echo are
// where EnsureBinaries would put them, not necessarily built.
func EnsurePinned(ctx context.Context, root string, w io.Writer, log *slog.Logger) (Binaries, error) {
	if w == nil {
		w = io.Discard
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bins := BinariesAt(root)
	if err := os.MkdirAll(K8sDir(root), 0o755); err != nil {
		return bins, fmt.Errorf("create binaries dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(K8sDir(root), ".lock"))
	if err != nil {
		return bins, err
	}
	defer unlock()

	stamp, err := buildStamp(root)
	if err != nil {
		return bins, err
	}
	stampFile := filepath.Join(K8sDir(root), ".stamp")
	if old, _ := os.ReadFile(stampFile); string(old) == stamp && allExist(bins.thirdParty()) {
		return bins, nil
	}
	start := time.Now()
	log.Info("building pinned Kubernetes binaries; a cold build takes 10+ minutes", "dir", K8sDir(root))
	_ = os.Remove(stampFile)
	for _, tb := range toolBuilds() {
		out := K8sDir(root) + string(filepath.Separator)
		if tb.out != "" {
			out = filepath.Join(K8sDir(root), tb.out)
		}
		args := append([]string{"build", "-ldflags=" + tb.ldflags, "-o", out}, tb.pkgs...)
		if err := goCmd(ctx, filepath.Join(root, "e2e", "lab", "k8s", tb.module), w, args...); err != nil {
			return bins, err
		}
	}
	if err := os.WriteFile(stampFile, []byte(stamp), 0o644); err != nil {
		return bins, fmt.Errorf("write build stamp: %w", err)
	}
	log.Info("built pinned binaries", "took", time.Since(start).Round(time.Second))
	return bins, nil
}

func goCmd(ctx context.Context, dir string, w io.Writer, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout = w
	cmd.Stderr = io.MultiWriter(w, &stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w: %s", strings.Join(args, " "), dir, err, lastLines(stderr.String(), 20))
	}
	return nil
}

func allExist(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
