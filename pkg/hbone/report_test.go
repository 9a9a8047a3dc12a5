package hbone

import (
	"flag"
	"fmt"
	"math/rand/v2"
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
	const nSlices, sliceBytes = 16, chunks / 16 * throughputChunk
	rounds := *reportRounds
	m := newMesh()
	type row struct{ gbps, allocs, cpu, p50, p99, xThru, xCPU, xP99 []float64 }
	rows := make([]row, len(benchPaths))
	order := make([]int, len(benchPaths))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range rounds {
		// Throughput alternates too: 16 slices of 8 MiB per path, each on a
		// fresh tunnel, the paths taking turns slice by slice.
		secs, mallocs, cpu := make([]float64, len(benchPaths)), make([]float64, len(benchPaths)), make([]float64, len(benchPaths))
		for range nSlices {
			// A shuffled order per slice, as in measurePaired: process CPU
			// time and throughput of a slice include what the previous
			// path left running (stock HTTP/2 leaves the most).
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
			for _, i := range order {
				p := benchPaths[i]
				c := p.open(t, m, "sink")
				thr := measureThroughput(t, c, chunks/nSlices)
				secs[i] += sliceBytes / thr.bytesPerSec
				mallocs[i] += thr.allocsPerMiB * sliceBytes / (1 << 20)
				cpu[i] += float64(thr.cpuPerMiB.Microseconds()) / nSlices
				_ = c.Close()
			}
		}
		var tlsThru, tlsCPU float64
		echo := make([]benchConn, len(benchPaths))
		for i, p := range benchPaths {
			bps := nSlices * sliceBytes / secs[i]
			r := &rows[i]
			r.gbps = append(r.gbps, bps*8/1e9)
			r.allocs = append(r.allocs, mallocs[i]/(nSlices*sliceBytes/(1<<20)))
			r.cpu = append(r.cpu, cpu[i])
			if p.name == "tls" {
				tlsThru, tlsCPU = bps, cpu[i]
			}
			if tlsThru > 0 {
				r.xThru = append(r.xThru, bps/tlsThru)
				r.xCPU = append(r.xCPU, cpu[i]/tlsCPU)
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
	_, _ = fmt.Fprintf(w, "path\tGbit/s\tx TLS\tCPU µs/MiB\tx TLS\tallocs/MiB\tp50 µs\tp99 µs\tp99 x TLS\t\n")
	for i, p := range benchPaths {
		r := rows[i]
		_, _ = fmt.Fprintf(w, "%s\t%.2f\t%s\t%.0f\t%s\t%.1f\t%.1f\t%.1f\t%s\t\n", p.name, median(r.gbps), ratio(r.xThru),
			median(r.cpu), ratio(r.xCPU), median(r.allocs), median(r.p50), median(r.p99), ratio(r.xP99))
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
