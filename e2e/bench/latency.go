package bench

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/weftmesh/weft/e2e/loadgen"
)

// costRoles are the proxy roles sampled around every run.
var costRoles = []string{roleZtunnel, roleWaypoint, roleRelay, roleNginx, roleNginxMesh}

// cost is what one role spent during one run.
type cost struct {
	Proxies int
	CPU     float64 // CPU seconds of all the role's processes
	RSS     float64 // MiB per proxy at the end
}

// sampleAll reads every present cost role.
func (b *bench) sampleAll() map[string]usage {
	out := map[string]usage{}
	for _, r := range costRoles {
		if u, err := b.sample(r); err == nil {
			out[r] = u
		}
	}
	return out
}

// costs is the difference of two sampleAll snapshots.
func costs(before, after map[string]usage) map[string]cost {
	out := map[string]cost{}
	for r, a := range after {
		bf, ok := before[r]
		if !ok || bf.Proxies != a.Proxies {
			continue // a process came or went: no honest difference
		}
		out[r] = cost{Proxies: a.Proxies, CPU: a.CPU - bf.CPU, RSS: a.RSS / float64(max(1, a.Proxies))}
	}
	return out
}

// latRun is one open-loop run and what the proxies spent on it.
type latRun struct {
	res      loadgen.LatencyResult
	requests float64 // requests offered, warm-up included
	costs    map[string]cost
}

func (b *bench) runLatency(ctx context.Context, p path, rate float64, conns int) (latRun, error) {
	before := b.sampleAll()
	var r latRun
	err := b.load(ctx, p, &r.res, "latency", "--addr="+p.HTTP, fmt.Sprintf("--rate=%g", rate), fmt.Sprintf("--conns=%d", conns),
		"--warmup="+b.cfg.Warmup.String(), "--duration="+b.cfg.Window.String())
	if err != nil {
		return r, err
	}
	r.costs = costs(before, b.sampleAll())
	r.requests = rate * (b.cfg.Warmup + b.cfg.Window).Seconds()
	return r, nil
}

// maxRate finds the highest rate the baseline (direct) sustains over
// conns connections: it measures the closed-loop capacity, then offers 70%
// of it open-loop and steps down by 30% until a run keeps up (every
// request answered, the queue drained), at most six times.
func (b *bench) maxRate(ctx context.Context, conns int) (float64, error) {
	direct := b.topo.paths[pathDirect]
	var out struct {
		RPS float64 `json:"rps"`
	}
	if err := b.load(ctx, direct, &out, "capacity", "--addr="+direct.HTTP, fmt.Sprintf("--conns=%d", conns),
		"--warmup="+b.cfg.Warmup.String(), "--duration="+b.cfg.Window.String()); err != nil {
		return 0, err
	}
	down := func(r float64) float64 { return math.Max(100, math.Floor(r*0.7/100)*100) }
	r := down(out.RPS)
	kept := false
	for range 6 {
		run, err := b.runLatency(ctx, direct, r, conns)
		if err != nil {
			return 0, err
		}
		if kept = run.res.Sustained; kept || r == 100 {
			break
		}
		r = down(r)
	}
	if b.rep.Method.MaxRate == nil {
		b.rep.Method.MaxRate = map[int]float64{}
	}
	b.rep.Method.MaxRate[conns] = r
	b.log.Info("max rate", "conns", conns, "capacity_rps", out.RPS, "max_rate", r, "kept_up", kept)
	return r, nil
}

// alternate returns names in order on even repetitions and reversed on
// odd ones, so no path always runs first (or last) in a warm machine.
func alternate(names []string, rep int) []string {
	out := slices.Clone(names)
	if rep%2 == 1 {
		slices.Reverse(out)
	}
	return out
}

// latencyScenario runs the fixed rates over every path.
func (b *bench) latencyScenario(ctx context.Context) error {
	for _, rate := range b.cfg.Rates {
		if rate == 0 {
			continue
		}
		for _, conns := range b.cfg.Conns {
			b.latencyCase(ctx, rate, fmt.Sprintf("%g rps, %d conn", rate, conns), conns)
		}
	}
	return nil
}

// latencyMaxScenario finds the highest rate the baseline sustains for each
// connection count and runs every path at it. It runs last: the paths that
// cannot keep up are overloaded on purpose, and what that leaves behind
// must not colour the other scenarios.
func (b *bench) latencyMaxScenario(ctx context.Context) error {
	if !slices.Contains(b.cfg.Rates, 0) {
		return nil
	}
	b.rep.Method.MaxRateSource = "per connection count: the direct path's closed-loop capacity, then open-loop runs from 70% of it down in 30% steps until one keeps up"
	for _, conns := range b.cfg.Conns {
		r, err := b.maxRate(ctx, conns)
		if err != nil {
			return err
		}
		b.latencyCase(ctx, r, fmt.Sprintf("max %g rps, %d conn", r, conns), conns)
	}
	return nil
}

// latencyCase runs one rate and connection count over every path, the
// order alternating between repetitions, and adds its rows. A run that
// fails is left out of the medians and counted in the rows' notes.
func (b *bench) latencyCase(ctx context.Context, rate float64, kase string, conns int) {
	names := b.pathNames()
	runs := map[string][]latRun{}
	for rep := range b.cfg.Reps {
		for _, n := range alternate(names, rep) {
			r, err := b.runLatency(ctx, b.topo.paths[n], rate, conns)
			if err != nil {
				b.log.Warn("latency run failed", "case", kase, "path", n, "err", err)
				b.failure(fmt.Sprintf("latency %s on %s", kase, n), err)
			}
			runs[n] = append(runs[n], r)
		}
	}
	b.log.Info("latency", "case", kase)
	b.latencyRows(kase, names, runs)
	if rate == 1000 && conns == slices.Max(b.cfg.Conns) {
		b.costRows(kase, runs)
	}
}

var percentiles = []struct {
	name string
	get  func(loadgen.Latency) float64
}{
	{"p50", func(l loadgen.Latency) float64 { return l.P50 }},
	{"p90", func(l loadgen.Latency) float64 { return l.P90 }},
	{"p99", func(l loadgen.Latency) float64 { return l.P99 }},
	{"max", func(l loadgen.Latency) float64 { return l.Max }},
}

func latVals(rs []latRun, get func(loadgen.Latency) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = math.NaN() // a run with no answers has no latency
		if r.res.Latency.Count > 0 {
			out[i] = get(r.res.Latency)
		}
	}
	return out
}

func sustained(rs []latRun) string {
	n := 0
	for _, r := range rs {
		if r.res.Sustained {
			n++
		}
	}
	return fmt.Sprintf("%d/%d", n, len(rs))
}

func (b *bench) latencyRows(kase string, names []string, runs map[string][]latRun) {
	base := runs[pathDirect]
	for _, subj := range names[1:] {
		for _, pc := range percentiles {
			row := newRow("latency", kase, pc.name+" latency", "ms", "lower", pathDirect, latVals(base, pc.get), subj, latVals(runs[subj], pc.get))
			row.Note = fmt.Sprintf("kept up: %s %s, %s %s", pathDirect, sustained(base), subj, sustained(runs[subj]))
			if subj == pathMesh && (pc.name == "p90" || pc.name == "p99") {
				v := map[string]float64{"p90": 0.17, "p99": 0.20}[pc.name]
				row.Peer = &Peer{Name: "Istio ztunnel, added " + pc.name, Value: v, Source: "Istio's published figure on their bare-metal hardware, compare with delta"}
			}
			b.rep.Rows = append(b.rep.Rows, row)
		}
	}
	if _, ok := runs[pathNginx]; !ok {
		return
	}
	for _, pc := range percentiles[:3] {
		nginxHop := pairwise(latVals(runs[pathNginx], pc.get), latVals(base, pc.get), sub)
		wpHop := pairwise(latVals(runs[pathWaypoint], pc.get), latVals(runs[pathMesh], pc.get), sub)
		row := newRow("latency", kase, "L7 hop adds, "+pc.name, "ms", "lower", "nginx−direct", nginxHop, "waypoint−mesh", wpHop)
		row.Note = "per repetition; plaintext nginx: its hop skips the two mTLS legs the waypoint's crosses"
		b.rep.Rows = append(b.rep.Rows, row)
		if _, ok := runs[pathNginxMesh]; ok {
			nm := pairwise(latVals(runs[pathNginxMesh], pc.get), latVals(runs[pathMesh], pc.get), sub)
			row := newRow("latency", kase, "L7 hop adds in the mesh, "+pc.name, "ms", "lower", "nginx-mesh−mesh", nm, "waypoint−mesh", wpHop)
			row.Note = "per repetition; nginx enrolled where the waypoint stands; target: the waypoint hop adds no more than nginx's"
			b.rep.Rows = append(b.rep.Rows, row)
		}
	}
}

// costRows are the data-plane cost per 1,000 rps, from the runs at 1,000 rps.
func (b *bench) costRows(kase string, runs map[string][]latRun) {
	perK := func(rs []latRun, role string, perProxy bool) (cpu, rss []float64) {
		for _, r := range rs {
			c, ok := r.costs[role]
			if !ok {
				continue
			}
			v := c.CPU / r.requests * 1000
			if perProxy {
				v /= float64(max(1, c.Proxies))
			}
			cpu, rss = append(cpu, v), append(rss, c.RSS)
		}
		return cpu, rss
	}
	zCPU, zRSS := perK(runs[pathMesh], roleZtunnel, true)
	rCPU, rRSS := perK(runs[pathRelay], roleRelay, true)
	row := newRow("dataplane-cost", kase, "vCPU per 1,000 rps, per proxy", "vCPU", "lower", "tls-relay", rCPU, "ztunnel", zCPU)
	row.Peer = &Peer{Name: "Istio ztunnel", Value: 0.06, Source: "Istio's published figure, their hardware"}
	b.rep.Rows = append(b.rep.Rows, row)
	row = newRow("dataplane-cost", kase, "resident memory per proxy at 1,000 rps", "MiB", "lower", "tls-relay", rRSS, "ztunnel", zRSS)
	row.Peer = &Peer{Name: "Istio ztunnel", Value: 12, Source: "Istio's published figure (MB), their hardware"}
	b.rep.Rows = append(b.rep.Rows, row)
	if _, ok := runs[pathNginx]; ok {
		wCPU, wRSS := perK(runs[pathWaypoint], roleWaypoint, true)
		nCPU, nRSS := perK(runs[pathNginx], roleNginx, true)
		row = newRow("dataplane-cost", kase, "L7 proxy vCPU per 1,000 rps", "vCPU", "lower", "nginx", nCPU, "waypoint", wCPU)
		row.Peer = &Peer{Name: "Istio waypoint (Envoy)", Value: 0.25, Source: "Istio's published figure, their hardware; target: under it"}
		b.rep.Rows = append(b.rep.Rows, row)
		row = newRow("dataplane-cost", kase, "L7 proxy resident memory at 1,000 rps", "MiB", "lower", "nginx", nRSS, "waypoint", wRSS)
		row.Peer = &Peer{Name: "Istio waypoint (Envoy)", Value: 60, Source: "Istio's published figure (MB), their hardware; target: under it"}
		b.rep.Rows = append(b.rep.Rows, row)
	}
	// The whole data plane of a request: both ztunnels, plus the waypoint.
	meshAll, _ := perK(runs[pathMesh], roleZtunnel, false)
	wpZ, _ := perK(runs[pathWaypoint], roleZtunnel, false)
	wpW, _ := perK(runs[pathWaypoint], roleWaypoint, false)
	row = newRow("dataplane-cost", kase, "whole data plane vCPU per 1,000 rps", "vCPU", "lower", "mesh (2 ztunnels)", meshAll, "waypoint path (2 ztunnels + waypoint)", pairwise(wpZ, wpW, func(x, y float64) float64 { return x + y }))
	b.rep.Rows = append(b.rep.Rows, row)
}
