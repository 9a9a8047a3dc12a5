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
	// Quick shortens every window for development (the whole run takes
	// under 5 minutes once the lab is up).
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
	// HoldReps is the number of repetitions of the held-connections case.
	HoldReps int
	// Idle is the window of the idle CPU measurement.
	Idle time.Duration
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
	// lives; the window starts once deletes have started.
	Churn, ChurnLife time.Duration
	ChurnRate        float64
	// Profile takes CPU profiles of the waypoint and a ztunnel under load.
	Profile bool
	// OutDir receives report.json (and profiles/); Docs is the Markdown page to write
	// ("" skips it).
	OutDir, Docs string
	// Log receives progress.
	Log *slog.Logger
}

// Defaults returns the full (or, with quick, the development) settings.
func Defaults(root string, quick bool) Config {
	c := Config{
		Root: root, Quick: quick, Reps: 5,
		Warmup: 2 * time.Second, Window: 10 * time.Second,
		Rates: []float64{100, 1000, 0}, Conns: []int{1, 16}, BulkConns: []int{1, 8},
		ConnRateWorkers: 16, HeldConns: 10000, HoldReps: 3, Idle: 10 * time.Second,
		Pin: true, ControlPlane: true, Profile: true,
		PropChanges: 60, EnrollPods: 100, Churn: 60 * time.Second, ChurnLife: 10 * time.Second, ChurnRate: 20,
	}
	if quick {
		c.Reps, c.Warmup, c.Window, c.Idle, c.HoldReps, c.ControlPlane = 3, 500*time.Millisecond, time.Second, 3*time.Second, 1, false
		c.PropChanges, c.EnrollPods, c.Churn, c.ChurnLife = 20, 20, 15*time.Second, 5*time.Second
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
	if c.Window <= 0 || c.Warmup < 0 || c.Idle <= 0 {
		errs = append(errs, fmt.Errorf("window %s, warm-up %s, idle %s", c.Window, c.Warmup, c.Idle))
	}
	if len(c.Rates) == 0 || len(c.Conns) == 0 || len(c.BulkConns) == 0 {
		errs = append(errs, errors.New("no rates or connection counts"))
	}
	if c.ConnRateWorkers <= 0 || c.HeldConns <= 0 || c.HoldReps <= 0 {
		errs = append(errs, fmt.Errorf("connection-rate workers %d, held connections %d, hold repetitions %d", c.ConnRateWorkers, c.HeldConns, c.HoldReps))
	}
	if c.PropChanges < distBlocks || c.EnrollPods <= 0 || c.Churn <= 0 || c.ChurnLife <= 0 || c.ChurnRate <= 0 {
		errs = append(errs, fmt.Errorf("propagation changes %d (at least %d), enrolment pods %d, churn %s at %g/s living %s", c.PropChanges, distBlocks, c.EnrollPods, c.Churn, c.ChurnRate, c.ChurnLife))
	}
	return errors.Join(errs...)
}
