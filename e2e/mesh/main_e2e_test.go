//go:build e2e

package mesh_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/e2e/lab"
)

// env is the lab every test of this binary shares, set up by TestMain.
var env *meshEnv

// meshEnv is a lab with Weft installed and the sample apps deployed.
type meshEnv struct {
	c    *lab.Cluster
	cs   *kubernetes.Clientset
	root string
	// steps records how long each setup step took, for the demo's notes.
	steps []string
}

// meshBins are the project's binaries the mesh images map to, built into
// a directory of this suite's own so that other builds of _output/bin do
// not change them under a running lab.
var meshBins = []string{"ztunnel", "istiod-lite", "weft-cni", "weft-cni-agent", "echo", "waypoint"}

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("e2e/mesh: skipping, the lab needs root")
		os.Exit(m.Run()) // every test skips through requireEnv
	}
	e, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e/mesh setup: %v\n", err)
		if e != nil {
			e.dumpDiagnostics()
			_ = e.close()
		}
		os.Exit(1)
	}
	env = e
	for _, s := range e.steps {
		fmt.Println("setup:", s)
	}
	code := m.Run()
	if code != 0 {
		e.dumpDiagnostics()
	}
	if err := e.close(); err != nil {
		fmt.Fprintf(os.Stderr, "tear down lab: %v\n", err)
		code = 1
	}
	os.Exit(code)
}

func requireEnv(t *testing.T) *meshEnv {
	t.Helper()
	if env == nil {
		t.Skip("the lab needs root")
	}
	return env
}

// setup is the demo's sequence: build, start a 2-node lab, install Weft
// from the manifests, wait for its components and deploy the samples.
func setup() (*meshEnv, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	root, err := lab.RepoRoot(".")
	if err != nil {
		return nil, err
	}
	e := &meshEnv{root: root}
	step := func(name string, f func() error) error {
		start := time.Now()
		err := f()
		e.steps = append(e.steps, fmt.Sprintf("%-44s %6.1fs", name, time.Since(start).Seconds()))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	binDir := filepath.Join(root, "_output", "mesh-e2e", "bin")
	if err := step("build weft binaries", func() error { return buildBins(ctx, root, binDir) }); err != nil {
		return nil, err
	}
	if err := step("generate CRDs (weft-build crds)", func() error {
		return run(ctx, root, "go", "run", "./cmd/weft-build", "crds")
	}); err != nil {
		return nil, err
	}
	images := map[string]string{}
	for _, b := range meshBins {
		images["weft/"+b] = filepath.Join(binDir, b)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := lab.SweepDead(ctx, root, log); err != nil {
		fmt.Fprintf(os.Stderr, "sweep dead labs: %v\n", err)
	}
	if err := step("start 2-node lab", func() error {
		c, err := lab.Up(ctx, lab.Options{Nodes: 2, Root: root, Images: images, Log: log})
		if err != nil {
			return err
		}
		e.c = c
		if e.cs, err = c.Clientset(); err != nil {
			return err
		}
		return c.WaitDNS(ctx)
	}); err != nil {
		if e.c != nil {
			return e, err
		}
		return nil, err
	}
	if err := step("install weft (kubectl apply -k manifests/)", func() error { return e.install(ctx) }); err != nil {
		return e, err
	}
	if err := step("wait for istiod-lite, ztunnel, weft-cni-agent", func() error {
		for _, r := range []string{"deployment/istiod-lite", "daemonset/ztunnel", "daemonset/weft-cni-agent"} {
			if _, err := e.kubectl(ctx, nil, "-n", "weft-system", "rollout", "status", r, "--timeout=3m"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return e, err
	}
	if err := step("deploy samples in demo (apply -k manifests/samples)", func() error {
		if _, err := e.kubectl(ctx, nil, "apply", "-k", filepath.Join(root, "manifests", "samples")); err != nil {
			return err
		}
		for _, r := range []string{"deployment/echo", "deployment/client"} {
			if _, err := e.kubectl(ctx, nil, "-n", "demo", "rollout", "status", r, "--timeout=3m"); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return e, err
	}
	return e, nil
}

// install applies the manifests as the README says: the CRDs first, until
// they are Established, then the whole kustomization, unchanged.
func (e *meshEnv) install(ctx context.Context) error {
	if _, err := e.kubectl(ctx, nil, "apply", "--server-side", "-k", filepath.Join(e.root, "manifests", "base", "crds")); err != nil {
		return err
	}
	if _, err := e.kubectl(ctx, nil, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"); err != nil {
		return err
	}
	_, err := e.kubectl(ctx, nil, "apply", "--server-side", "-k", filepath.Join(e.root, "manifests"))
	return err
}

func buildBins(ctx context.Context, root, dir string) error {
	args := []string{"build", "-trimpath", "-tags", "grpcnotrace", "-o", dir + "/"} // as the Makefile builds
	for _, b := range meshBins {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}

func (e *meshEnv) kubectl(ctx context.Context, stdin *string, args ...string) (string, error) {
	if stdin != nil {
		return e.c.Kubectl(ctx, strings.NewReader(*stdin), args...)
	}
	return e.c.Kubectl(ctx, nil, args...)
}

// close tears the lab down.
func (e *meshEnv) close() error {
	return e.c.Close()
}

// dumpDiagnostics prints the pods and the logs of Weft's components.
func (e *meshEnv) dumpDiagnostics() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := e.kubectl(ctx, nil, "get", "pods", "-A", "-o", "wide")
	fmt.Fprintf(os.Stderr, "== pods\n%s\n", out)
	for _, sel := range []string{"app=istiod-lite", "app=ztunnel", "app=weft-cni-agent"} {
		out, _ := e.kubectl(ctx, nil, "-n", "weft-system", "logs", "-l", sel, "--all-containers", "--tail=60", "--prefix")
		fmt.Fprintf(os.Stderr, "== logs %s\n%s\n", sel, out)
	}
	for _, n := range e.c.Plan.Nodes {
		b, _ := os.ReadFile(filepath.Join(e.c.Dir, "nodes", n.Name, "root", "var", "log", "weft-cni.log"))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		fmt.Fprintf(os.Stderr, "== weft-cni plugin log on %s\n%s\n", n.Name, b)
	}
}

// exec runs argv in the network namespace of pod ns/name.
func (e *meshEnv) exec(ctx context.Context, ns, name string, argv ...string) (string, error) {
	path, err := lab.PodNetns(ctx, e.cs, e.c.Plan.Name, ns, name)
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	if err := lab.ExecIn(ctx, path, lab.BinDirs(e.root), argv, nil, &out, &errb); err != nil {
		return out.String(), fmt.Errorf("exec %v in %s/%s: %w: %s", argv, ns, name, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
