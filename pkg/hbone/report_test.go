package hbone

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"
	"text/tabwriter"
	"time"
)

var (
	report       = flag.Bool("hbone.report", false, "print the HBONE performance table (TestBenchReport)")
	reportRounds = flag.Int("hbone.rounds", 5, "interleaved measurement rounds for -hbone.report")
)

// TestBenchReport prints the comparison table that make bench shows:
//
//	go test -run='^TestBenchReport$' -v ./pkg/hbone -args -hbone.report [-hbone.rounds=9]
//
// Paths are measured in rounds, and within a round the round trips of all
// paths alternate one by one, so that noise from other load on the machine
// hits all of them alike; each figure is the median over the rounds, and
// ratios are medians of the per-round ratios to plain TLS.
func TestBenchReport(t *testing.T) {
	if !*report {
		t.Skip("pass -hbone.report to print the performance table")
	}
	const chunks, trips = 4096, 5000 // 128 MiB and 5,000 round trips per path per round
	rounds := *reportRounds
	m := newMesh()
	type row struct{ gbps, allocs, p50, p99, xThru, xP99 []float64 }
	rows := make([]row, len(benchPaths))
	for range rounds {
		var tlsThru float64
		echo := make([]benchConn, len(benchPaths))
		for i, p := range benchPaths {
			thr := measureThroughput(t, p.open(t, m, "sink"), chunks)
			r := &rows[i]
			r.gbps = append(r.gbps, thr.bytesPerSec*8/1e9)
			r.allocs = append(r.allocs, thr.allocsPerMiB)
			if p.name == "tls" {
				tlsThru = thr.bytesPerSec
			}
			if tlsThru > 0 {
				r.xThru = append(r.xThru, thr.bytesPerSec/tlsThru)
			}
			echo[i] = p.open(t, m, "echo")
		}
		// Round trips alternate between the paths, one each in turn.
		lat := measurePaired(t, echo, trips)
		tlsP99 := 0.0
		for i, p := range benchPaths {
			r := &rows[i]
			r.p50 = append(r.p50, us(lat[i].p50))
			r.p99 = append(r.p99, us(lat[i].p99))
			if p.name == "tls" {
				tlsP99 = us(lat[i].p99)
			}
			if tlsP99 > 0 {
				r.xP99 = append(r.xP99, us(lat[i].p99)/tlsP99)
			}
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintf(w, "path\tGbit/s\tx TLS\tallocs/MiB\tp50 µs\tp99 µs\tp99 x TLS\t\n")
	for i, p := range benchPaths {
		r := rows[i]
		_, _ = fmt.Fprintf(w, "%s\t%.2f\t%s\t%.1f\t%.1f\t%.1f\t%s\t\n", p.name, median(r.gbps), ratio(r.xThru),
			median(r.allocs), median(r.p50), median(r.p99), ratio(r.xP99))
	}
	_ = w.Flush()
	before := inUse()
	closeAll := openIdleHBONE(t, m, idleStreams)
	perStream := float64(inUse()-before) / idleStreams
	closeAll()
	fmt.Printf("hbone: %d idle streams use %.1f MiB (%.0f bytes per stream, client and server)\n",
		idleStreams, perStream*idleStreams/(1<<20), perStream)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratio(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", median(v))
}
