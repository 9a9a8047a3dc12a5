package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/weftmesh/weft/e2e/lab"
	"github.com/weftmesh/weft/e2e/loadgen"
)

// scenarios runs every data-plane scenario on the running lab.
func (b *bench) scenarios(ctx context.Context) error {
	for _, s := range []struct {
		name string
		run  func(context.Context) error
	}{
		// Bulk transfers and overload go last: both have been seen to leave
		// the mesh path unable to carry new connections for a while (the
		// probe after each scenario notes it), which must not colour the
		// scenarios before them.
		{"idle cost", b.idleScenario},
		{"latency", b.latencyScenario},
		{"connection rate", b.connRateScenario},
		{"held connections", b.holdScenario},
		{"throughput", b.throughputScenario},
		{"latency at the baseline's highest rate", b.latencyMaxScenario},
		// The control plane on the running mesh: the churn goes last, since
		// its pods are left to the lab's teardown.
		{"cp-propagation", b.cpPropagationScenario},
		{"cp-enroll", b.cpEnrollScenario},
		{"cp-churn", b.cpChurnScenario},
	} {
		if len(b.cfg.Scenarios) > 0 && !slices.Contains(b.cfg.Scenarios, s.name) {
			continue
		}
		start := time.Now()
		b.log.Info("scenario", "name", s.name)
		if err := b.pin(); err != nil { // catch restarted processes
			return err
		}
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("scenario %s: %w", s.name, err)
		}
		b.log.Info("scenario done", "name", s.name, "took", time.Since(start).Round(100*time.Millisecond))
		b.probe(ctx, s.name)
	}
	return nil
}

// probe checks that every path still answers new connections after a
// scenario, and notes how long one took to recover, so that a scenario
// that leaves a proxy stuck is visible rather than colouring the next.
func (b *bench) probe(ctx context.Context, after string) {
	const limit = 30 * time.Second
	// At least 5 requests, however short the probe.
	rate := fmt.Sprintf("--rate=%g", math.Max(20, math.Ceil(5/b.cfg.Probe.Seconds())))
	for _, n := range b.pathNames() {
		p := b.topo.paths[n]
		start := time.Now()
		var last string
		for {
			var res loadgen.LatencyResult
			err := b.load(ctx, p, &res, "latency", "--addr="+p.HTTP, rate, "--conns=1", "--warmup=0s", "--duration="+b.cfg.Probe.String())
			if err == nil && res.Errors == 0 && res.Unsent == 0 {
				break
			}
			last = res.FirstErr
			if err != nil {
				last = err.Error()
			}
			if time.Since(start) > limit || ctx.Err() != nil {
				dumps := b.dumpZtunnels(ctx, strings.ReplaceAll(after, " ", "-"))
				b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("after %s: the %s path did not answer new connections for %s (%s); ztunnel goroutine dumps: %s", after, n, limit, last, strings.Join(dumps, ", ")))
				b.log.Warn("path stuck", "after", after, "path", n, "err", last)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if d := time.Since(start); last != "" && d <= limit {
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("after %s: the %s path answered new connections again only after %s (%s)", after, n, d.Round(100*time.Millisecond), last))
			b.log.Warn("path recovered", "after", after, "path", n, "took", d, "err", last)
		}
	}
}

func (b *bench) throughputScenario(ctx context.Context) error {
	names := []string{pathDirect, pathMesh, pathRelay}
	for _, conns := range b.cfg.BulkConns {
		kase := fmt.Sprintf("%d conn", conns)
		vals := map[string][]float64{}
		for rep := range b.cfg.Reps {
			for _, n := range alternate(names, rep) {
				p := b.topo.paths[n]
				res := loadgen.ThroughputResult{MbitPerS: math.NaN()}
				if err := b.load(ctx, p, &res, "throughput", "--addr="+p.Source, fmt.Sprintf("--conns=%d", conns),
					"--warmup="+b.cfg.Warmup.String(), "--duration="+b.cfg.Window.String()); err != nil {
					b.failure(fmt.Sprintf("throughput %s on %s", kase, n), err)
				}
				vals[n] = append(vals[n], res.MbitPerS)
			}
		}
		for _, pair := range [][2]string{{pathDirect, pathMesh}, {pathDirect, pathRelay}, {pathRelay, pathMesh}} {
			b.rep.Rows = append(b.rep.Rows, newRow("throughput", kase, "bulk transfer", "Mbit/s", "higher", pair[0], vals[pair[0]], pair[1], vals[pair[1]]))
		}
	}
	return nil
}

func (b *bench) connRateScenario(ctx context.Context) error {
	names := []string{pathDirect, pathMesh}
	for _, mode := range []struct {
		label        string
		serverCloses bool
	}{{"client closes", false}, {"server closes (Connection: close)", true}} {
		kase := fmt.Sprintf("%d parallel, %s", b.cfg.ConnRateWorkers, mode.label)
		rate, p50, p99, errs := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}, map[string]int{}
		for rep := range b.cfg.Reps {
			for _, n := range alternate(names, rep) {
				p := b.topo.paths[n]
				res := loadgen.ConnRateResult{PerS: math.NaN()}
				if err := b.load(ctx, p, &res, "connrate", "--addr="+p.HTTP, fmt.Sprintf("--conns=%d", b.cfg.ConnRateWorkers),
					fmt.Sprintf("--server-closes=%t", mode.serverCloses), "--warmup="+b.cfg.Warmup.String(), "--duration="+b.cfg.Window.String()); err != nil {
					b.failure(fmt.Sprintf("connection rate %s on %s", kase, n), err)
				}
				if res.Errors > 0 {
					b.log.Warn("connection rate errors", "path", n, "case", kase, "errors", res.Errors, "first", res.FirstErr)
				}
				errs[n] += res.Errors
				rate[n] = append(rate[n], res.PerS)
				p50[n] = append(p50[n], nanIfNone(res.Latency.Count, res.Latency.P50))
				p99[n] = append(p99[n], nanIfNone(res.Latency.Count, res.Latency.P99))
			}
		}
		note := fmt.Sprintf("failed connections (no answer in 2 s, warm-up included): direct %d, mesh %d", errs[pathDirect], errs[pathMesh])
		for _, r := range []Row{
			newRow("connection-rate", kase, "new connections (1 request each)", "conn/s", "higher", pathDirect, rate[pathDirect], pathMesh, rate[pathMesh]),
			newRow("connection-rate", kase, "connect+request p50", "ms", "lower", pathDirect, p50[pathDirect], pathMesh, p50[pathMesh]),
			newRow("connection-rate", kase, "connect+request p99", "ms", "lower", pathDirect, p99[pathDirect], pathMesh, p99[pathMesh]),
		} {
			r.Note = note
			b.rep.Rows = append(b.rep.Rows, r)
		}
	}
	return nil
}

func nanIfNone(count int, v float64) float64 {
	if count == 0 {
		return math.NaN()
	}
	return v
}

// idleSettle is how long after the lab's pods are up the idle rows start:
// past ztunnel's and the waypoint's default RELEASE_PAGES_AFTER (10 s).
const idleSettle = 15 * time.Second

// idleScenario reads every proxy's CPU and memory with no traffic, from
// idleSettle after the lab's pods came up.
func (b *bench) idleScenario(ctx context.Context) error {
	// As on a node whose pods have settled: ztunnel and the waypoint drop
	// the mappings of their executables' start-up pages 10 s after the
	// last pod enrollment or L7 configuration change.
	select {
	case <-time.After(time.Until(b.deployed.Add(idleSettle))):
	case <-ctx.Done():
		return ctx.Err()
	}
	cpu, rss := map[string][]float64{}, map[string][]float64{}
	for range b.cfg.Reps {
		before := b.sampleAll()
		select {
		case <-time.After(b.cfg.Idle):
		case <-ctx.Done():
			return ctx.Err()
		}
		for role, c := range costs(before, b.sampleAll()) {
			cpu[role] = append(cpu[role], c.CPU/b.cfg.Idle.Seconds()/float64(max(1, c.Proxies)))
			rss[role] = append(rss[role], c.RSS)
		}
	}
	b.idleRSS = map[string]float64{}
	for role, v := range rss {
		b.idleRSS[role] = median(v)
	}
	kase := fmt.Sprintf("idle, %s window", b.cfg.Idle)
	b.rep.Rows = append(b.rep.Rows,
		newRow("dataplane-cost", kase, "vCPU per proxy", "vCPU", "lower", roleRelay, cpu[roleRelay], roleZtunnel, cpu[roleZtunnel]),
		newRow("dataplane-cost", kase, "resident memory per proxy", "MiB", "lower", roleRelay, rss[roleRelay], roleZtunnel, rss[roleZtunnel]))
	if _, ok := cpu[roleNginx]; ok {
		b.rep.Rows = append(b.rep.Rows,
			newRow("dataplane-cost", kase, "L7 proxy vCPU", "vCPU", "lower", roleNginx, cpu[roleNginx], roleWaypoint, cpu[roleWaypoint]),
			newRow("dataplane-cost", kase, "L7 proxy resident memory", "MiB", "lower", roleNginx, rss[roleNginx], roleWaypoint, rss[roleWaypoint]))
	}
	return nil
}

// holdScenario opens HeldConns idle connections through the mesh and
// through the relay pair and reads the proxies' memory and CPU.
func (b *bench) holdScenario(ctx context.Context) error {
	names := []string{pathMesh, pathRelay}
	role := map[string]string{pathMesh: roleZtunnel, pathRelay: roleRelay}
	rss, cpu, perConn := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	opened := map[string]int{}
	window := b.cfg.HoldWindow
	settle := window / 2
	for rep := range b.cfg.HoldReps {
		for _, n := range alternate(names, rep) {
			open, c, err := b.holding(ctx, b.topo.paths[n], settle, window)
			u, ok := c[role[n]]
			if err == nil && !ok {
				err = fmt.Errorf("no %s usage", role[n])
			}
			if err != nil {
				b.failure("held connections on "+n, err)
				continue
			}
			opened[n] = open
			rss[n] = append(rss[n], u.RSS)
			cpu[n] = append(cpu[n], u.CPU/window.Seconds()/float64(max(1, u.Proxies)))
			perConn[n] = append(perConn[n], (u.RSS-b.idleRSS[role[n]])*1024/float64(max(1, open)))
		}
	}
	kase := fmt.Sprintf("%d open connections", b.cfg.HeldConns)
	note := fmt.Sprintf("opened: mesh %d, tls-relay %d", opened[pathMesh], opened[pathRelay])
	for _, r := range []Row{
		newRow("dataplane-cost", kase, "resident memory per proxy", "MiB", "lower", roleRelay, rss[pathRelay], roleZtunnel, rss[pathMesh]),
		newRow("dataplane-cost", kase, "memory per held connection per proxy, over idle", "KiB", "lower", roleRelay, perConn[pathRelay], roleZtunnel, perConn[pathMesh]),
		newRow("dataplane-cost", kase, "vCPU per proxy while holding", "vCPU", "lower", roleRelay, cpu[pathRelay], roleZtunnel, cpu[pathMesh]),
	} {
		r.Note = note
		b.rep.Rows = append(b.rep.Rows, r)
	}
	return nil
}

// holding opens the connections on p in the background, waits for them,
// lets them settle, and returns how many opened and the proxies' costs
// over window. The connections are closed before it returns.
func (b *bench) holding(ctx context.Context, p path, settle, window time.Duration) (int, map[string]cost, error) {
	hctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	argv := []string{filepath.Join(b.binDir, "weft-load"), "hold", "--addr=" + p.Hold, fmt.Sprintf("--conns=%d", b.cfg.HeldConns)}
	if b.loadCPU != "" {
		argv = append([]string{"taskset", "-c", b.loadCPU}, argv...)
	}
	go func() { // owned by holding: waited for below
		defer close(done)
		// The holder runs until stop cancels it, so its error says nothing.
		_ = lab.ExecIn(hctx, p.Netns, nil, argv, nil, pw, io.Discard)
		_ = pw.CloseWithError(io.EOF)
	}()
	stop := func() {
		cancel()
		_ = pr.Close()
		<-done
	}
	var res loadgen.HoldResult
	line := make(chan error, 1)
	go func() { // owned by holding: ends when the pipe has a line or closes
		sc := bufio.NewScanner(pr)
		if !sc.Scan() {
			line <- fmt.Errorf("weft-load hold on %s ended without a result", p.Name)
			return
		}
		line <- json.Unmarshal(sc.Bytes(), &res)
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case err := <-line:
		if err != nil {
			stop()
			return 0, nil, err
		}
	case <-time.After(3 * time.Minute):
		stop()
		return 0, nil, fmt.Errorf("weft-load hold on %s: connections not open after 3 minutes", p.Name)
	}
	if res.Errors > 0 {
		b.log.Warn("held connections failed", "path", p.Name, "open", res.Open, "errors", res.Errors, "first", res.FirstErr)
	}
	// Connections keep costing after they open (the relays' TLS
	// handshakes, pools growing): measure once the proxies are quiet.
	time.Sleep(settle)
	b.waitQuiet(ctx, 30*time.Second)
	before := b.sampleAll()
	time.Sleep(window)
	c := costs(before, b.sampleAll())
	stop()
	time.Sleep(settle) // let the proxies close them before the next case
	return res.Open, c, nil
}

// waitQuiet waits up to limit until no proxy uses more than 5% of a CPU
// over half a second.
func (b *bench) waitQuiet(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		before := b.sampleAll()
		time.Sleep(500 * time.Millisecond)
		busy := false
		for role, c := range costs(before, b.sampleAll()) {
			if v := c.CPU / 0.5 / float64(max(1, c.Proxies)); v > 0.05 {
				b.log.Debug("not quiet yet", "role", role, "vcpu", v)
				busy = true
			}
		}
		if !busy {
			return
		}
	}
}

// dumpZtunnels saves every ztunnel's goroutine dump (its loopback admin
// /debug/pprof/goroutine?debug=2) and config_dump under OUT/stuck/, for a
// path that stopped answering, and returns the files written.
func (b *bench) dumpZtunnels(ctx context.Context, tag string) []string {
	out := b.cfg.OutDir
	if out == "" {
		out = filepath.Join(b.cfg.Root, "_output", "bench")
	}
	dir := filepath.Join(out, "stuck")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	ps, err := b.procs(roleZtunnel)
	if err != nil {
		return nil
	}
	var files []string
	for _, p := range ps {
		for what, path := range map[string]string{"goroutines": "/debug/pprof/goroutine?debug=2", "config": "/config_dump"} {
			file := filepath.Join(dir, fmt.Sprintf("%s-ztunnel-%s-%s.txt", tag, p.Node, what))
			var stderr bytes.Buffer
			argv := []string{"curl", "-sf", "--max-time", "10", "-o", file, "http://127.0.0.1:15000" + path}
			if err := lab.ExecIn(ctx, fmt.Sprintf("/proc/%d/ns/net", p.PID), nil, argv, nil, nil, &stderr); err != nil {
				b.log.Warn("ztunnel dump", "node", p.Node, "what", what, "err", err, "stderr", stderr.String())
				continue
			}
			files = append(files, relPath(b.cfg.Root, file))
		}
	}
	slices.Sort(files)
	return files
}
