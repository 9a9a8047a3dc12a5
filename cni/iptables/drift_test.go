package iptables

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDrift removes parts of an installed pod capture the way a person
// with a shell in the pod would, and checks Drift names each, that Apply
// repairs exactly that (the dump is the golden again) and that Drift is
// then empty.
func TestDrift(t *testing.T) {
	inbound := InPodRuleSet(Config{}).rulesFor(Chain{"nat", ChainPrerouting})[1]
	tests := []struct {
		name   string
		tamper func(tb *Recorder, rt *RouteRecorder)
	}{
		{"nothing", func(*Recorder, *RouteRecorder) {}},
		{"inbound redirect deleted", func(tb *Recorder, _ *RouteRecorder) {
			_ = tb.DeleteIfExists("nat", ChainPrerouting, inbound...)
		}},
		{"nat chains flushed", func(tb *Recorder, _ *RouteRecorder) {
			_ = tb.ClearChain("nat", ChainPrerouting)
			_ = tb.ClearChain("nat", ChainOutput)
		}},
		{"jump deleted", func(tb *Recorder, _ *RouteRecorder) {
			_ = tb.DeleteIfExists("mangle", "OUTPUT", "-j", ChainOutput)
		}},
		{"chain deleted", func(tb *Recorder, _ *RouteRecorder) {
			_ = tb.DeleteIfExists("nat", "OUTPUT", "-j", ChainOutput)
			_ = tb.ClearAndDeleteChain("nat", ChainOutput)
		}},
		{"rule added", func(tb *Recorder, _ *RouteRecorder) {
			_ = tb.Append("nat", ChainOutput, "-p", "udp", "-j", "ACCEPT")
		}},
		{"ip rule and route deleted", func(_ *Recorder, rt *RouteRecorder) {
			rt.DeleteRule()
			rt.DeleteRoute()
		}},
	}
	var report strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, rt := NewRecorder(), &RouteRecorder{}
			p := InPod{Tables: tb, Routes: rt}
			if err := p.Apply(); err != nil {
				t.Fatal(err)
			}
			want := dumpPod(tb, rt)
			tt.tamper(tb, rt)
			drift, err := p.Drift()
			if err != nil {
				t.Fatal(err)
			}
			if (len(drift) == 0) != (tt.name == "nothing") {
				t.Errorf("drift = %q", drift)
			}
			report.WriteString("## " + tt.name + "\n")
			for _, d := range drift {
				report.WriteString(d + "\n")
			}
			if err := p.Apply(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, dumpPod(tb, rt)); diff != "" {
				t.Errorf("after repair (-want +got):\n%s", diff)
			}
			if drift, _ := p.Drift(); len(drift) != 0 {
				t.Errorf("drift after repair = %q", drift)
			}
		})
	}
	golden(t, "drift.golden", report.String())
}

// TestDriftUninstalled: a namespace without capture drifts in every part.
func TestDriftUninstalled(t *testing.T) {
	drift, err := (InPod{Tables: NewRecorder(), Routes: &RouteRecorder{}}).Drift()
	if err != nil {
		t.Fatal(err)
	}
	rs := InPodRuleSet(Config{})
	if want := 2 + len(rs.Chains) + len(rs.Jumps); len(drift) != want {
		t.Errorf("got %d drift lines, want %d: %q", len(drift), want, drift)
	}
}
