package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// scalePods are the pod counts the control-plane scenario runs at.
var scalePods = []int{1000, 5000}

// controlPlane runs e2e/controlplane's BenchmarkScale (its own lab, the
// benchmark's istiod-lite binary) at each of scalePods and turns its
// metrics into rows. Its baseline is Istio's istiod measured with 5,000
// pods on this kind of machine (the benchmark's constants, recovered from
// its x-less-...-than-istiod ratios), so only the 5,000-pod rows have one.
func (b *bench) controlPlane(ctx context.Context) error {
	if b.cfg.ControlPlaneOnly {
		if err := b.build(ctx); err != nil {
			return err
		}
	}
	for _, pods := range scalePods {
		b.log.Info("control plane", "pods", pods)
		m, err := runScale(ctx, b.cfg.Root, filepath.Join(b.binDir, "istiod-lite"), pods)
		if err != nil {
			return err
		}
		b.rep.Rows = append(b.rep.Rows, scaleRows(pods, m)...)
	}
	return nil
}

// runScale runs BenchmarkScale once and returns its reported metrics by unit.
func runScale(ctx context.Context, root, istiod string, pods int) (map[string]float64, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-tags", "e2e", "-count=1", "-run", "^$", "-bench", "^BenchmarkScale$",
		"-benchtime", "1x", "-timeout", "60m", "./e2e/controlplane")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "WEFT_ISTIOD_LITE="+istiod, fmt.Sprintf("WEFT_SCALE_PODS=%d", pods))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("BenchmarkScale with %d pods: %w\n%s", pods, err, lastLines(string(out), 30))
	}
	m := parseBenchLine(string(out), "BenchmarkScale")
	if len(m) == 0 {
		return nil, fmt.Errorf("BenchmarkScale with %d pods printed no metrics:\n%s", pods, lastLines(string(out), 30))
	}
	return m, nil
}

// parseBenchLine returns the unit→value pairs of the first result line of
// benchmark name in go test output.
func parseBenchLine(out, name string) map[string]float64 {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], name) {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		return m
	}
	return nil
}

// scaleRows turns BenchmarkScale's metrics into rows.
func scaleRows(pods int, m map[string]float64) []Row {
	kase := fmt.Sprintf("%d pods, 1,000 services", pods)
	var rows []Row
	add := func(metric, unit, key, ratioKey string) {
		v, ok := m[key]
		if !ok {
			return
		}
		var base []float64
		if r, ok := m[ratioKey]; ok && pods == 5000 && r > 0 {
			// x-less/faster-than-istiod = istiod / weft for every key used.
			base = []float64{v * r}
		}
		row := newRow("control-plane", kase, metric, unit, "lower", "istiod (Istio, measured on this kind of machine)", base, "istiod-lite", []float64{v})
		row.Note = "one run (BenchmarkScale), no spread"
		switch {
		case ratioKey == "":
			row.Note += "; no istiod figure to compare with"
		case base == nil:
			row.Note += "; istiod was measured at 5,000 pods only"
		}
		rows = append(rows, row)
	}
	add("resident memory", "MB", "rss-MB", "x-less-rss-than-istiod")
	add("anonymous memory", "MB", "anon-MB", "x-less-anon-than-istiod")
	add("cold start to ready", "s", "ready-s", "x-faster-ready-than-istiod")
	add("CPU per pod ingested", "ms", "cpu-ms/pod", "x-less-cpu-per-pod-than-istiod")
	add("pod change to every xDS client's ACK, p50", "ms", "p50-ms", "")
	add("pod change to every xDS client's ACK, p99", "ms", "p99-ms", "")
	return rows
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
