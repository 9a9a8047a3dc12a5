//go:build linux

package iptables

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/netns"
)

// BenchmarkKernelInPodApply measures installing one pod's capture (rules
// and routing, in a fresh namespace) beside a baseline of a single
// `iptables -S` run in that namespace. x-baseline is roughly how many
// iptables invocations an enrollment costs.
func BenchmarkKernelInPodApply(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	mode := DetectMode(context.Background())
	be, err := NewBackend(mode)
	if err != nil {
		b.Fatal(err)
	}
	r := NewRedirector(Config{}, be, NetlinkRoutes{})
	bin := "iptables-" + string(mode)
	if _, err := exec.LookPath(bin); err != nil {
		bin = "iptables"
	}
	var apply, baseline time.Duration
	for range b.N {
		b.StopTimer()
		ns, err := netns.New()
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := ns.Do(func() error { return exec.Command(bin, "-S").Run() }); err != nil {
			b.Fatal(err)
		}
		baseline += time.Since(t0)
		b.StartTimer()
		t1 := time.Now()
		if err := r.Apply(ns); err != nil {
			b.Fatal(err)
		}
		apply += time.Since(t1)
		b.StopTimer()
		if err := r.Remove(ns); err != nil {
			b.Fatal(err)
		}
		_ = ns.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(baseline.Nanoseconds())/float64(b.N), "baseline-ns/op")
	b.ReportMetric(float64(apply)/float64(baseline), "x-baseline")
}

// BenchmarkKernelInPodCheck measures one rule check of an installed pod
// (what the node agent runs per held pod every rule check interval) beside
// a baseline of a single `iptables -S` in that namespace; x-baseline is
// its cost in iptables invocations.
func BenchmarkKernelInPodCheck(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	mode := DetectMode(context.Background())
	be, err := NewBackend(mode)
	if err != nil {
		b.Fatal(err)
	}
	r := NewRedirector(Config{}, be, NetlinkRoutes{})
	bin := "iptables-" + string(mode)
	if _, err := exec.LookPath(bin); err != nil {
		bin = "iptables"
	}
	ns, err := netns.New()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	if err := r.Apply(ns); err != nil {
		b.Fatal(err)
	}
	var check, baseline time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := ns.Do(func() error { return exec.Command(bin, "-S").Run() }); err != nil {
			b.Fatal(err)
		}
		baseline += time.Since(t0)
		t1 := time.Now()
		drift, err := r.Check(ns)
		if err != nil || len(drift) != 0 {
			b.Fatalf("Check = %q, %v", drift, err)
		}
		check += time.Since(t1)
	}
	b.ReportMetric(float64(check.Nanoseconds())/float64(b.N), "check-ns/op")
	b.ReportMetric(float64(baseline.Nanoseconds())/float64(b.N), "baseline-ns/op")
	b.ReportMetric(float64(check)/float64(baseline), "x-baseline")
}
