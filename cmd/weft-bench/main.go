// Command weft-bench is Weft's whole-mesh benchmark (`make bench`): it
// starts a 2-node lab, installs Weft from the manifests, measures latency,
// throughput, connection rate and data-plane cost beside their baselines,
// the control plane on the running mesh (pod change to every ztunnel's
// ACK, at rest and under churn; namespace label to mTLS) and, in the full
// mode, the control plane at scale, prints a table and
// writes _output/bench/report.json and docs/performance.md.
//
//	weft-bench [--quick] [--reps N] [--control-plane[=false]] [--profile[=false]] [--only SCENARIO]... [--out DIR] [--docs FILE]
//	weft-bench --control-plane-only [--out DIR] [--docs FILE]
//	weft-bench --from-json _output/bench/report.json [--merge OTHER.json]... [--note TEXT]... [--docs FILE]
//
// It needs root, and runs one lab: hold the lab lock around it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/weftmesh/weft/e2e/bench"
	"github.com/weftmesh/weft/e2e/lab"
	"github.com/weftmesh/weft/e2e/loadgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "weft-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := lab.RepoRoot(".")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("weft-bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "development mode: 3 repetitions of short windows, no control plane at scale, no profiles (under 5 minutes in all, lab start and teardown included)")
	reps := fs.Int("reps", 0, "repetitions per case (default 5, or 3 with --quick; at least 3)")
	cp := fs.Bool("control-plane", false, "run the control-plane scale benchmark (default: on in the full mode, off with --quick)")
	pin := fs.Bool("pin", true, "pin the load generator away from the proxies")
	profile := fs.Bool("profile", false, "take CPU profiles of the waypoint and a ztunnel under load (into OUT/profiles; default: on in the full mode, off with --quick)")
	out := fs.String("out", filepath.Join(root, "_output", "bench"), "directory for report.json, profiles/ and the lab's binaries (bin/)")
	docs := fs.String("docs", filepath.Join(root, "docs", "performance.md"), "Markdown page to write (empty skips it)")
	cpOnly := fs.Bool("control-plane-only", false, "run only the control-plane scale benchmark (no data-plane lab)")
	fromJSON := fs.String("from-json", "", "render the table and the page from an existing report.json, without a lab")
	var scenarios []string
	only := func(s string) error { scenarios = append(scenarios, s); return nil }
	const names = "idle cost, latency, connection rate, held connections, throughput, latency at the baseline's highest rate, cp-propagation, cp-enroll, cp-churn"
	fs.Func("scenario", "run only this scenario on the lab (repeatable): "+names, only)
	fs.Func("only", "the same as --scenario", only)
	var merge []string
	fs.Func("merge", "with --from-json: add the rows of another report.json (repeatable)", func(s string) error { merge = append(merge, s); return nil })
	var notes []string
	fs.Func("note", "with --from-json: add a note to the report and the page, such as what was observed outside the harness during the run (repeatable)", func(s string) error { notes = append(notes, s); return nil })
	verbose := fs.Bool("v", false, "log progress at debug level")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if *fromJSON != "" {
		r, err := bench.ReadReport(*fromJSON)
		if err != nil {
			return err
		}
		out := ""
		if len(notes) > 0 {
			r.Notes = append(r.Notes, notes...)
			out = filepath.Dir(*fromJSON) // the annotated report replaces the first
		}
		for _, m := range merge {
			o, err := bench.ReadReport(m)
			if err != nil {
				return err
			}
			r.Merge(o)
			out = filepath.Dir(*fromJSON) // the merged report replaces the first
		}
		return publish(r, out, *docs)
	}
	cfg := bench.Defaults(root, *quick)
	if *reps != 0 {
		cfg.Reps = *reps
	}
	fs.Visit(func(f *flag.Flag) { // only when given: the mode decides otherwise
		switch f.Name {
		case "control-plane":
			cfg.ControlPlane = *cp
		case "profile":
			cfg.Profile = *profile
		}
	})
	cfg.ControlPlaneOnly = *cpOnly
	cfg.Scenarios = scenarios
	if *cpOnly {
		cfg.ControlPlane = true
	}
	cfg.Pin, cfg.OutDir, cfg.Docs = *pin, *out, *docs
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := cfg.Validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs root")
	}
	// The lab's processes inherit this limit: ztunnels and relays holding
	// 10,000 connections need two descriptors for each.
	if _, err := loadgen.RaiseFileLimit(1 << 20); err != nil {
		cfg.Log.Warn("open-file limit", "err", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	r, err := bench.Run(ctx, cfg)
	if r != nil {
		if perr := publish(r, cfg.OutDir, cfg.Docs); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// publish prints the table and writes the JSON (when dir is set) and the page.
func publish(r *bench.Report, dir, docs string) error {
	if err := bench.WriteTable(os.Stdout, r); err != nil {
		return err
	}
	if dir != "" {
		p, err := r.WriteJSON(dir)
		if err != nil {
			return err
		}
		fmt.Println("report:", p)
	}
	if docs != "" {
		if err := bench.WriteMarkdown(docs, r); err != nil {
			return err
		}
		fmt.Println("page:", docs)
	}
	return nil
}
