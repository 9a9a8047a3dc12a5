package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config is one benchmark run.
type Config struct {
	// Root is the repository root.
	Root string
	// Quick shortens every window and setup wait for development: the
	// whole command, lab start and teardown included, takes under 5
	// minutes on the 2-core lab machine.
	Quick bool
	// Reps is how many times each scenario runs, alternating the order of
	// baseline and subject (at least 3).
	Reps int
	// Warmup runs before each measured window, at the same load, and is
	// discarded; Window is the measured window.
	Warmup, Window time.Duration
	// Rates are the fixed open-loop rates; 0 stands for the highest rate the
	// baseline sustains (found at the start of the run).
	Rates []float64
	// Conns are the connection counts of the latency scenario;
	// BulkConns those of the throughput scenario.
	Conns, BulkConns []int
	// ConnRateWorkers is how many connections are opened in parallel in the
	// connection-rate scenario.
	ConnRateWorkers int
	// HeldConns is the number of idle connections of the data-plane cost
	// scenario.
	HeldConns int
	// HoldReps is the number of repetitions of the held-connections case
	// (at least 3), HoldWindow its measured window.
	HoldReps   int
	HoldWindow time.Duration
	// Idle is the window of the idle CPU measurement.
	Idle time.Duration
	// Probe is the length of the check, after each scenario, that every
	// path still answers new connections.
	Probe time.Duration
	// Pin puts the load generator on the last CPU and the proxies and
	// servers on the others, when there are at least two.
	Pin bool
	// ControlPlane runs e2e/controlplane's BenchmarkScale at 1,000 and
	// 5,000 pods (a lab of its own each; about 10 minutes).
	ControlPlane bool
	// ControlPlaneOnly skips the data-plane lab and runs only the control
	// plane scenario.
	ControlPlaneOnly bool
	// Scenarios, when set, limits the run to the named scenarios ("idle
	// cost", "latency", "connection rate", "held connections",
	// "throughput", "latency at the baseline's highest rate",
	// "cp-propagation", "cp-enroll", "cp-churn").
	Scenarios []string
	// PropChanges is how many pod changes the running-mesh propagation
	// scenario times to every ztunnel's ACK (at least 50 in the full mode).
	PropChanges int
	// EnrollPods is how many running pods the enrolment scenario labels
	// into the mesh at once (`kubectl label ns`).
	EnrollPods int
	// Churn is the measured window of the churn scenario, ChurnRate the
	// pods it creates (and deletes) per second and ChurnLife how long each
	// lives; the window starts once deletes have started. ChurnIdle is the
	// idle window istiod-lite's cost is sampled over just before.
	Churn, ChurnLife, ChurnIdle time.Duration
	ChurnRate                   float64
	// Profile takes CPU profiles of the waypoint and a ztunnel under load
	// (on by default in the full mode, off in the quick one).
	Profile bool
	// OutDir receives report.json (and profiles/); Docs is the Markdown page to write
	// ("" skips it).
	OutDir, Docs string
	// Log receives progress.
	Log *slog.Logger
}

// Defaults returns the full (or, with quick, the development) settings.
// The quick mode keeps every scenario, its baseline and 3 repetitions,
// and shortens the windows instead: see docs/performance.md for what each
// figure then rests on.
func Defaults(root string, quick bool) Config {
	c := Config{
		Root: root, Quick: quick, Reps: 5,
		Warmup: 2 * time.Second, Window: 10 * time.Second,
		Rates: []float64{100, 1000, 0}, Conns: []int{1, 16}, BulkConns: []int{1, 8},
		ConnRateWorkers: 16, HeldConns: 10000, HoldReps: 3, HoldWindow: 2 * time.Second,
		Idle: 10 * time.Second, Probe: 250 * time.Millisecond,
		Pin: true, ControlPlane: true, Profile: true,
		PropChanges: 60, EnrollPods: 100,
		Churn: 60 * time.Second, ChurnLife: 10 * time.Second, ChurnIdle: 10 * time.Second, ChurnRate: 20,
	}
	if quick {
		c.Reps, c.Warmup, c.Window, c.Idle, c.Probe = 3, 250*time.Millisecond, 500*time.Millisecond, 2*time.Second, 100*time.Millisecond
		c.HeldConns, c.HoldWindow = 2000, time.Second
		c.ControlPlane, c.Profile = false, false
		c.PropChanges, c.EnrollPods = 20, 20
		c.Churn, c.ChurnLife, c.ChurnIdle = 8*time.Second, 3*time.Second, 3*time.Second
	}
	return c
}

// Validate reports settings that cannot give an honest report.
func (c Config) Validate() error {
	var errs []error
	if c.Root == "" {
		errs = append(errs, errors.New("no repository root"))
	}
	if c.Reps < 3 {
		errs = append(errs, fmt.Errorf("repetitions %d: at least 3 are needed for a median and a spread", c.Reps))
	}
	if c.Window <= 0 || c.Warmup < 0 || c.Idle <= 0 || c.HoldWindow <= 0 || c.Probe <= 0 {
		errs = append(errs, fmt.Errorf("window %s, warm-up %s, idle %s, hold window %s, probe %s", c.Window, c.Warmup, c.Idle, c.HoldWindow, c.Probe))
	}
	if len(c.Rates) == 0 || len(c.Conns) == 0 || len(c.BulkConns) == 0 {
		errs = append(errs, errors.New("no rates or connection counts"))
	}
	if c.ConnRateWorkers <= 0 || c.HeldConns <= 0 || c.HoldReps < 3 {
		errs = append(errs, fmt.Errorf("connection-rate workers %d, held connections %d, hold repetitions %d (at least 3)", c.ConnRateWorkers, c.HeldConns, c.HoldReps))
	}
	if c.PropChanges < distBlocks || c.EnrollPods <= 0 || c.Churn <= 0 || c.ChurnLife <= 0 || c.ChurnIdle <= 0 || c.ChurnRate <= 0 {
		errs = append(errs, fmt.Errorf("propagation changes %d (at least %d), enrolment pods %d, churn %s at %g/s living %s after %s idle", c.PropChanges, distBlocks, c.EnrollPods, c.Churn, c.ChurnRate, c.ChurnLife, c.ChurnIdle))
	}
	return errors.Join(errs...)
}

// scheduled is the load the settings schedule: every warm-up, measured
// window, idle window (and the settling before them), probe and churn phase, with 5 paths and the
// full scenario list. It leaves out the lab's setup and teardown, the
// opening of held connections and what a slow machine adds, so a run
// takes longer; the quick mode keeps it well under its 5 minutes.
func (c Config) scheduled() time.Duration {
	const paths = 5 // direct, mesh, waypoint, tls-relay, nginx
	run := c.Warmup + c.Window
	fixed := 0
	for _, r := range c.Rates {
		if r != 0 {
			fixed++
		}
	}
	d := idleSettle + time.Duration(c.Reps)*c.Idle            // the idle rows wait for the pods to settle
	d += time.Duration(fixed*len(c.Conns)*c.Reps*paths) * run // latency
	d += time.Duration(len(c.Conns)*(c.Reps*paths+2)) * run   // at the highest rate: capacity, one search run, the case
	d += time.Duration(2*c.Reps*2) * run                      // connection rate: 2 variants, 2 paths
	d += time.Duration(len(c.BulkConns)*c.Reps*3) * run       // throughput: 3 paths
	d += time.Duration(c.HoldReps*2) * 2 * c.HoldWindow       // held: settle, window, settle
	d += time.Duration(9*paths) * c.Probe                     // a probe after each scenario
	d += time.Duration(c.PropChanges) * changeGap             // cp-propagation
	d += c.ChurnIdle + c.ChurnLife + time.Second + c.Churn    // cp-churn
	if c.Profile {
		d += time.Second + profileSeconds*time.Second
	}
	return d
}
