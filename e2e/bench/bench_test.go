package bench

import (
	"bytes"
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestMedianSpread(t *testing.T) {
	tests := []struct {
		in          []float64
		med, spread float64
	}{
		{[]float64{3, 1, 2}, 2, 2},
		{[]float64{4, 1, 2, 3}, 2.5, 3},
		{[]float64{7}, 7, 0},
	}
	for _, tc := range tests {
		if m, s := median(tc.in), spread(tc.in); m != tc.med || s != tc.spread {
			t.Errorf("median, spread of %v = %v, %v; want %v, %v", tc.in, m, s, tc.med, tc.spread)
		}
	}
	if !math.IsNaN(median(nil)) || !math.IsNaN(ratio(1, 0)) {
		t.Error("median of nothing and ratio over zero must be NaN")
	}
}

func TestNewRow(t *testing.T) {
	r := newRow("latency", "100 rps, 1 conn", "p99 latency", "ms", "lower", "direct", []float64{1, 2, 3}, "mesh", []float64{2, 4, 3})
	if r.Ratio != 1.5 || r.Delta != 1 || r.Spread.Baseline != 2 || r.Spread.Subject != 2 {
		t.Errorf("newRow = %+v; want ratio 1.5, delta 1, spreads 2 and 2", r)
	}
}

func TestAlternate(t *testing.T) {
	names := []string{"a", "b", "c"}
	if diff := cmp.Diff([]string{"a", "b", "c"}, alternate(names, 0)); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]string{"c", "b", "a"}, alternate(names, 1)); diff != "" {
		t.Error(diff)
	}
	if names[0] != "a" {
		t.Error("alternate changed its input")
	}
}

func TestParseBenchLine(t *testing.T) {
	out := "goos: linux\nBenchmarkScale-2   \t       1\t123456 ns/op\t 2.5 ready-s\t  80.0 rss-MB\t 3.31 x-less-rss-than-istiod\nPASS\n"
	want := map[string]float64{"ns/op": 123456, "ready-s": 2.5, "rss-MB": 80, "x-less-rss-than-istiod": 3.31}
	if diff := cmp.Diff(want, parseBenchLine(out, "BenchmarkScale")); diff != "" {
		t.Errorf("parseBenchLine (-want +got):\n%s", diff)
	}
	rows := scaleRows(5000, want)
	if len(rows) != 2 || math.Abs(rows[0].Baseline.Median-264.8) > 0.01 || rows[0].Subject.Median != 80 {
		t.Errorf("scaleRows = %+v; want rss with the recovered istiod baseline 264.8 and ready-s", rows)
	}
	// A line as BenchmarkScale prints it, after the bare name -v prints.
	real := "BenchmarkScale\nBenchmarkScale-2   \t       1\t9583641174 ns/op\t        32.65 anon-MB\t         0.06200 cpu-ms/pod\t       568.4 initial-sync-ms\t        15.96 p50-ms\t        32.10 p99-ms\t         0.7808 ready-s\t        78.88 rss-MB\t         2.433 x-faster-ready-than-istiod\t         5.268 x-less-anon-than-istiod\t        24.19 x-less-cpu-per-pod-than-istiod\t         3.360 x-less-rss-than-istiod\n"
	rows = scaleRows(5000, parseBenchLine(real, "BenchmarkScale"))
	if len(rows) != 6 || math.Abs(rows[0].Baseline.Median-265.04) > 0.01 || math.Abs(rows[2].Baseline.Median-1.9) > 0.01 {
		t.Errorf("rows from a real line: %+v", rows)
	}
	if rows := scaleRows(1000, want); len(rows[0].Baseline.Values) != 0 {
		t.Errorf("1,000-pod rows have a baseline: %+v", rows[0])
	}
}

func TestPodYAML(t *testing.T) {
	var pod corev1.Pod
	y := podYAML("bench-direct", "relay", "node-1", "bench-relay", true, "relay", "--tls-out=:17901=100.64.1.12:17911")
	if err := yaml.UnmarshalStrict([]byte(y), &pod); err != nil {
		t.Fatalf("podYAML does not parse: %v\n%s", err, y)
	}
	if pod.Spec.NodeName != "node-1" || !pod.Spec.HostNetwork || len(pod.Spec.Containers) != 1 ||
		!cmp.Equal(pod.Spec.Containers[0].Args, []string{"relay", "--tls-out=:17901=100.64.1.12:17911"}) {
		t.Errorf("pod = %+v", pod.Spec)
	}
	for _, doc := range strings.Split(appYAML("bench-mesh", true, "node-1", "node-2"), "---\n") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Errorf("appYAML document does not parse: %v\n%s", err, doc)
		}
	}
}

func TestRender(t *testing.T) {
	r := &Report{Mode: "quick", Started: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), Machine: Machine{CPUs: 2}, Method: Method{Reps: 3}}
	row := newRow("latency", "100 rps, 1 conn", "p90 latency", "ms", "lower", "direct", []float64{0.5, 0.6, 0.7}, "mesh", []float64{0.8, 0.9, 1.2})
	row.Peer = &Peer{Name: "Istio ztunnel, added p90", Value: 0.17, Source: "theirs"}
	r.Rows = append(r.Rows, row, newRow("control-plane", "1000 pods", "resident memory", "MB", "lower", "istiod", nil, "istiod-lite", []float64{60}))
	r.Notes = []string{"something not measured"}
	var tb bytes.Buffer
	if err := WriteTable(&tb, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== latency", "direct 0.600 ±0.200", "mesh 0.900 ±0.400", "1.50x", "+0.300", "istiod —", "n/a", "note: something not measured"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
	md := Markdown(r)
	for _, want := range []string{"# Performance", "### latency", "Istio ztunnel, added p90: 0.170 (theirs)", "their numbers on their hardware", "- something not measured"} {
		if !strings.Contains(md, want) {
			t.Errorf("page lacks %q:\n%s", want, md)
		}
	}
	// JSON has no NaN: the missing baseline's median is written as 0.
	dir := t.TempDir()
	p, err := r.WriteJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadReport(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != 2 || back.Rows[1].Ratio != 0 || back.Rows[0].Ratio != 1.5 {
		t.Errorf("round trip: %+v", back.Rows)
	}
}

func TestMerge(t *testing.T) {
	r := &Report{Rows: []Row{{Scenario: "latency"}}, Notes: []string{"control plane: not run in this mode", "other"}}
	o := &Report{Mode: "full", Started: time.Date(2026, 11, 27, 11, 25, 0, 0, time.UTC), Duration: 300,
		Rows: []Row{{Scenario: "control-plane"}}, Notes: []string{"from the other run"}}
	r.Merge(o)
	want := []string{"other", "control-plane rows from a separate control-plane-only run of 2026-11-27 11:25 UTC (300 s)", "from the other run"}
	if diff := cmp.Diff(want, r.Notes); diff != "" || len(r.Rows) != 2 {
		t.Errorf("Merge notes (-want +got):\n%s\nrows %d", diff, len(r.Rows))
	}
}

func TestQuickMode(t *testing.T) {
	full, quick := Defaults("/r", false), Defaults("/r", true)
	if err := quick.Validate(); err != nil {
		t.Fatalf("quick mode does not validate: %v", err)
	}
	// Every scenario keeps its baseline and the 3 repetitions; the
	// windows and setup waits are what get shorter.
	if quick.Reps < 3 || quick.HoldReps < 3 || quick.Profile || quick.ControlPlane {
		t.Errorf("quick mode: %d repetitions, %d held-connection passes, profiles %t, control plane at scale %t; want ≥ 3, ≥ 3, off, off",
			quick.Reps, quick.HoldReps, quick.Profile, quick.ControlPlane)
	}
	if !full.Profile || !full.ControlPlane || full.HeldConns != 10000 {
		t.Errorf("full mode lost profiles, the control plane at scale or its 10,000 held connections: %+v", full)
	}
	t.Logf("scheduled load: quick %s, full %s", quick.scheduled(), full.scheduled())
	// The lab's setup and teardown take about a minute and a half on the
	// 2-core lab machine: what the quick mode schedules must leave room.
	if got := quick.scheduled(); got > 150*time.Second {
		t.Errorf("quick mode schedules %s of load; want at most 2m30s to finish under 5 minutes", got)
	}
	if got, was := quick.scheduled(), full.scheduled(); got*10 > was {
		t.Errorf("quick mode schedules %s, the full mode %s: want a tenth or less", got, was)
	}
	bad := quick
	bad.HoldReps = 1
	if bad.Validate() == nil {
		t.Error("1 held-connections pass validated: the issue asks for at least 3 repetitions")
	}
}

func TestTimed(t *testing.T) {
	full := &Report{Mode: "full", Duration: 3401, Machine: Machine{LoadStart: "9.1 8 7", LoadEnd: "5 4 3"}}
	tests := []struct {
		r          *Report
		mode, want string
	}{
		{full, "full", "This run took 56 min 41 s from the harness's start to its report (load average 9.1 8 7 at the start, 5 4 3 at the end)"},
		{full, "quick", quickTimed},
		{&Report{Mode: "quick", Duration: 52}, "quick", "This run took 52 s"},
		{&Report{Mode: "quick", Duration: 52, Method: Method{Scenarios: []string{"latency"}}}, "quick", quickTimed},
	}
	for _, tc := range tests {
		if got := timed(tc.r, tc.mode, quickTimed); !strings.HasPrefix(got, tc.want) {
			t.Errorf("timed(%s run, %s) = %q; want prefix %q", tc.r.Mode, tc.mode, got, tc.want)
		}
	}
	for n, want := range map[int]string{999: "999", 2000: "2,000", 10000: "10,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestSampleLoad(t *testing.T) {
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		t.Skip("no /proc/loadavg here")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var got []float64
	done := sampleLoad(ctx, time.Millisecond, &got)
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-done
	if len(got) < 2 {
		t.Fatalf("%d load samples in 20ms at 1ms; want several", len(got))
	}
	r := &Report{Mode: "full", Machine: Machine{LoadStart: "1 2 3", LoadEnd: "4 5 6", Load1: []float64{3, 1, 8}}}
	if want := "sampled every 30s during the run: min 1.0, median 3.0, max 8.0."; !strings.Contains(Markdown(r), want) {
		t.Errorf("page lacks %q", want)
	}
}
