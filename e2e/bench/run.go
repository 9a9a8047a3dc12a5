package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/e2e/lab"
)

// imageBins are the binaries the lab's images map to; cliBins are run by
// the benchmark itself. Both are built into a directory of the
// benchmark's own, so that other builds never change them under a
// running lab and /proc can tell its processes by their executable.
var (
	imageBins = []string{"ztunnel", "istiod-lite", "weft-cni", "weft-cni-agent", "waypoint", "weft-load"}
	cliBins   = []string{"weftctl"}
)

// bench is one run in progress.
type bench struct {
	cfg       Config
	log       *slog.Logger
	binDir    string
	c         *lab.Cluster
	cs        *kubernetes.Clientset
	topo      *topology
	rep       *Report
	loadCPU   string // the CPU list the load generator runs on ("" unpinned)
	proxyCPUs []int
	failures  int
	idleRSS   map[string]float64 // median idle MiB per proxy, by role
	deployed  time.Time          // when the lab's pods were all up
	prober    *prober            // the control-plane scenarios' change timer
	restProp  []float64          // pod change→ACK ms at rest, the churn's baseline
}

// Run starts a lab, installs Weft, runs every scenario and writes the
// report (JSON, table on stdout, Markdown). It tears the lab down before
// returning. The caller holds the lab lock. When a scenario fails it
// returns the report so far with the error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mode := "full"
	if cfg.Quick {
		mode = "quick"
	}
	out := cfg.OutDir
	if out == "" {
		out = filepath.Join(cfg.Root, "_output", "bench")
	}
	// The binaries go beside the report, so that two runs with different
	// output directories never replace each other's lab binaries; the lab
	// mounts them from where its own processes run, so the path is
	// absolute.
	out, err := filepath.Abs(out)
	if err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	b := &bench{cfg: cfg, log: log, binDir: filepath.Join(out, "bin"),
		rep: &Report{Mode: mode, Started: time.Now().UTC(), Machine: machineFacts(cfg.Root)}}
	b.rep.Method = Method{Reps: cfg.Reps, WarmupS: cfg.Warmup.Seconds(), WindowS: cfg.Window.Seconds(), HeldConns: cfg.HeldConns, ConnWorkers: cfg.ConnRateWorkers, Scenarios: cfg.Scenarios}
	// The machine is shared: its load as the run goes is part of the report.
	lctx, stopLoad := context.WithCancel(ctx)
	var load []float64
	loadDone := sampleLoad(lctx, loadEvery, &load)
	defer func() {
		stopLoad()
		<-loadDone
		b.rep.Machine.Load1 = load
		b.rep.Machine.LoadEnd = loadavg()
		b.rep.Duration = time.Since(b.rep.Started).Seconds()
	}()
	if cfg.ControlPlaneOnly {
		b.rep.Mode = "control-plane-only"
		if err := b.controlPlane(ctx); err != nil {
			return nil, err
		}
		return b.rep, nil
	}
	if err := b.setup(ctx); err != nil {
		b.closeLab()
		return nil, err
	}
	err = b.scenarios(ctx)
	if err == nil && cfg.Profile {
		if perr := b.profiles(ctx, out); perr != nil {
			b.rep.Notes = append(b.rep.Notes, "profiles: "+perr.Error())
		}
	}
	b.closeLab()
	if err != nil {
		b.rep.Notes = append(b.rep.Notes, "run failed: "+err.Error())
		return b.rep, err // what was measured, for the caller to publish
	}
	if cfg.ControlPlane {
		if err := b.controlPlane(ctx); err != nil {
			b.rep.Notes = append(b.rep.Notes, "control plane: "+err.Error())
		}
	} else {
		b.rep.Notes = append(b.rep.Notes, "control plane: not run in this mode; `weft-bench --control-plane` (or `--control-plane-only`) runs e2e/controlplane's BenchmarkScale at 1,000 and 5,000 pods (a lab each, about 10 minutes)")
	}
	b.rep.Notes = append(b.rep.Notes, b.notRun()...)
	return b.rep, nil
}

// failure records a run that failed; the first few go into the notes.
func (b *bench) failure(what string, err error) {
	b.failures++
	if b.failures <= 10 {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("failed run, left out of the medians: %s: %v", what, err))
	}
}

// cpScenarios are the control-plane scenarios on the running mesh, and
// what each measures, for the note of a run that left them out.
var cpScenarios = map[string]string{
	"cp-propagation": "p99 propagation from a pod change to every ztunnel's ACK on the running mesh",
	"cp-enroll":      "time from `kubectl label ns` to mTLS for running pods",
	"cp-churn":       "propagation and istiod-lite's cost under pod churn",
}

// notRun notes the control-plane scenarios a filtered run left out.
func (b *bench) notRun() []string {
	var out []string
	for _, name := range []string{"cp-propagation", "cp-enroll", "cp-churn"} {
		if len(b.cfg.Scenarios) > 0 && !slices.Contains(b.cfg.Scenarios, name) {
			out = append(out, fmt.Sprintf("not measured in this run: %s (`--only %s`)", cpScenarios[name], name))
		}
	}
	return out
}

func (b *bench) setup(ctx context.Context) error {
	step := func(name string, f func() error) error {
		start := time.Now()
		b.log.Info("setup", "step", name)
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b.log.Info("setup done", "step", name, "took", time.Since(start).Round(100*time.Millisecond))
		return nil
	}
	if err := step("build binaries", func() error { return b.build(ctx) }); err != nil {
		return err
	}
	if err := step("generate CRDs", func() error {
		return runIn(ctx, b.cfg.Root, "go", "run", "./cmd/weft-build", "crds")
	}); err != nil {
		return err
	}
	images := map[string]string{}
	for _, n := range imageBins {
		images["weft/"+n] = filepath.Join(b.binDir, n)
	}
	if err := lab.SweepDead(ctx, b.cfg.Root, b.log); err != nil {
		b.log.Warn("sweep dead labs", "err", err)
	}
	if err := step("start a 2-node lab", func() error {
		c, err := lab.Up(ctx, lab.Options{Nodes: 2, Root: b.cfg.Root, Images: images, Log: b.log})
		if err != nil {
			return err
		}
		b.c = c
		if b.cs, err = c.Clientset(); err != nil {
			return err
		}
		return c.WaitDNS(ctx)
	}); err != nil {
		return err
	}
	if err := step("install weft from manifests", func() error {
		if err := lab.InstallWeft(ctx, b.c); err != nil {
			return err
		}
		return lab.WaitWeftReady(ctx, b.c, 3*time.Minute)
	}); err != nil {
		return err
	}
	if err := step("deploy load generators, servers, waypoint, relays, nginx", func() error { return b.deploy(ctx) }); err != nil {
		return err
	}
	b.deployed = time.Now()
	return step("pin", func() error { return b.pin() })
}

func (b *bench) closeLab() {
	if b.prober != nil {
		_ = b.prober.Close() // a namespace handle and idle connections
		b.prober = nil
	}
	if b.c == nil {
		return
	}
	if err := b.c.Close(); err != nil {
		b.log.Warn("tear down lab", "err", err)
	}
	b.c = nil
}

func (b *bench) build(ctx context.Context) error {
	args := []string{"build", "-trimpath", "-tags", "grpcnotrace", "-o", b.binDir + "/"} // as the Makefile builds
	for _, n := range append(append([]string{}, imageBins...), cliBins...) {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.cfg.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// pin puts the load generator on the last CPU and every proxy and server
// of the lab on the others. Threads started later inherit their mask.
func (b *bench) pin() error {
	n := runtime.NumCPU()
	if !b.cfg.Pin || n < 2 {
		b.rep.Method.Pinning = fmt.Sprintf("none (%d CPUs)", n)
		return nil
	}
	b.loadCPU = strconv.Itoa(n - 1)
	b.proxyCPUs = b.proxyCPUs[:0]
	for i := range n - 1 {
		b.proxyCPUs = append(b.proxyCPUs, i)
	}
	pinned := 0
	for _, role := range []string{roleZtunnel, roleWaypoint, roleRelay, roleNginx, roleNginxMesh, roleServer} {
		ps, err := b.procs(role)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if err := pinProc(p.PID, b.proxyCPUs); err != nil {
				return err
			}
			pinned++
		}
	}
	b.rep.Method.Pinning = fmt.Sprintf("load generator on CPU %s; %d proxy and server processes (ztunnels, waypoint, relays, nginx, servers) on CPUs %v; the lab's control plane unpinned", b.loadCPU, pinned, b.proxyCPUs)
	return nil
}

// load runs weft-load mode args... in path's client network namespace,
// pinned to the load CPU, and decodes its JSON output into out.
func (b *bench) load(ctx context.Context, p path, out any, mode string, args ...string) error {
	argv := append([]string{filepath.Join(b.binDir, "weft-load"), mode}, args...)
	if b.loadCPU != "" {
		argv = append([]string{"taskset", "-c", b.loadCPU}, argv...)
	}
	var stdout, stderr bytes.Buffer
	if err := lab.ExecIn(ctx, p.Netns, nil, argv, nil, &stdout, &stderr); err != nil {
		return fmt.Errorf("weft-load %s on path %s: %w: %s", mode, p.Name, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), out); err != nil {
		return fmt.Errorf("weft-load %s output %q: %w", mode, stdout.String(), err)
	}
	return nil
}

func (b *bench) weftctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(b.binDir, "weftctl"), append([]string{"--kubeconfig", b.c.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waypointRequests sums istio_requests_total on the waypoint's metrics port.
func (b *bench) waypointRequests(ctx context.Context) (float64, error) {
	ps, err := b.procs(roleWaypoint)
	if err != nil || len(ps) == 0 {
		return 0, fmt.Errorf("find the waypoint process: %v", err)
	}
	netns := fmt.Sprintf("/proc/%d/ns/net", ps[0].PID)
	var stdout, stderr bytes.Buffer
	if err := lab.ExecIn(ctx, netns, nil, []string{"curl", "-sf", "--max-time", "5", "http://127.0.0.1:15020/metrics"}, nil, &stdout, &stderr); err != nil {
		return 0, fmt.Errorf("waypoint metrics: %w: %s", err, stderr.String())
	}
	var sum float64
	for _, l := range strings.Split(stdout.String(), "\n") {
		if !strings.HasPrefix(l, "istio_requests_total{") {
			continue
		}
		f := strings.Fields(l)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum, nil
}

func runIn(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}
