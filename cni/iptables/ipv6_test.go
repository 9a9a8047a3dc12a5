package iptables

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInPodIPv6Golden: a dual-stack InPod installs the IPv4 set unchanged
// (the inpod goldens) and the IPv6 set through the IPv6 backends; applying
// twice writes nothing; Remove leaves nothing in either family; Drift
// names IPv6 parts with an "ipv6 " prefix.
func TestInPodIPv6Golden(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"inpod6", Config{}}, {"inpod6-dns", Config{RedirectDNS: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			t4, r4 := NewRecorder(), &RouteRecorder{}
			t6, r6 := NewRecorder(), &RouteRecorder{IPv6: true}
			p := InPod{Config: tc.cfg, Tables: t4, Routes: r4, Tables6: t6, Routes6: r6}
			if err := p.Apply(); err != nil {
				t.Fatal(err)
			}
			v4 := InPod{Config: tc.cfg, Tables: NewRecorder(), Routes: &RouteRecorder{}}
			if err := v4.Apply(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(dumpPod(v4.Tables.(*Recorder), v4.Routes.(*RouteRecorder)), dumpPod(t4, r4)); diff != "" {
				t.Errorf("IPv4 part differs from the IPv4-only set (-want +got):\n%s", diff)
			}
			first := dumpPod(t6, r6)
			golden(t, tc.name+".golden", first)
			if drift, err := p.Drift(); err != nil || len(drift) != 0 {
				t.Fatalf("Drift after Apply = %q, %v", drift, err)
			}

			t4.Ops, t6.Ops = nil, nil
			if err := p.Apply(); err != nil {
				t.Fatal(err)
			}
			if ops := append(mutatingOps(t4.Ops), mutatingOps(t6.Ops)...); len(ops) != 0 {
				t.Fatalf("second Apply wrote rules: %q", ops)
			}
			if diff := cmp.Diff(first, dumpPod(t6, r6)); diff != "" {
				t.Fatalf("second Apply changed state:\n%s", diff)
			}

			r6.DeleteRule()
			_ = t6.ClearChain("nat", ChainPrerouting)
			drift, err := p.Drift()
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range drift {
				if !strings.HasPrefix(d, "ipv6 ") {
					t.Errorf("drift %q is not marked ipv6", d)
				}
			}
			if len(drift) != 3 {
				t.Errorf("drift = %q, want the ip rule and 2 PREROUTING rules", drift)
			}
			if err := p.Apply(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(first, dumpPod(t6, r6)); diff != "" {
				t.Fatalf("repair did not restore the IPv6 set:\n%s", diff)
			}

			for range 2 {
				if err := p.Remove(); err != nil {
					t.Fatal(err)
				}
			}
			if got := dumpPod(t4, r4) + dumpPod(t6, r6); got != "# routing\n# routing\n" {
				t.Fatalf("after Remove:\n%s", got)
			}
		})
	}
}

// A Redirector without WithIPv6 installs no IPv6 rules.
func TestInPodIPv4OnlyByDefault(t *testing.T) {
	p := InPod{Tables: NewRecorder(), Routes: &RouteRecorder{}}
	if p.ipv6() {
		t.Fatal("IPv6 part enabled without IPv6 backends")
	}
	r := NewRedirector(Config{}, NewRecorder(), &RouteRecorder{})
	if r.inPod().ipv6() || !r.WithIPv6(NewRecorder(), &RouteRecorder{IPv6: true}).inPod().ipv6() || r.inPod().ipv6() {
		t.Fatal("WithIPv6 must enable IPv6 on a copy only")
	}
}

// TestProbeSNAT6Golden: the IPv6 probe SNAT takes IPv6 pod addresses only,
// SNATs them to ProbeSNATAddr6, lists them back and is idempotent.
func TestProbeSNAT6Golden(t *testing.T) {
	tables := NewRecorder()
	p := ProbeSNAT{Tables: tables, IPv6: true}
	for range 2 {
		if err := p.Ensure(); err != nil {
			t.Fatal(err)
		}
		if err := p.Add("fd00:10:244:1::5", "uid-a"); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "probe-snat6.golden", tables.Dump())
	if got, err := p.List(); err != nil || !cmp.Equal(got, map[string]string{"uid-a": "fd00:10:244:1::5"}) {
		t.Fatalf("List = %v, %v", got, err)
	}
	for _, bad := range []string{"10.244.1.5", "::ffff:10.244.1.5", "nope"} {
		if err := p.Add(bad, "uid-x"); err == nil {
			t.Errorf("Add(%q) accepted", bad)
		}
	}
	for range 2 {
		if err := p.Delete("fd00:10:244:1::5", "uid-a"); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := p.List(); len(got) != 0 {
		t.Fatalf("after Delete: %v", got)
	}
}
