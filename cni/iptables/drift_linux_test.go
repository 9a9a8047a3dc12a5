//go:build linux

package iptables

import (
	"os/exec"
	"strings"
	"testing"
)

// TestKernelDriftAndRepair installs a pod's capture in a throwaway netns,
// removes parts of it by hand with the iptables and ip commands, and checks
// that Check names what is gone, Apply repairs it to the same rules, and
// Check is then clean.
func TestKernelDriftAndRepair(t *testing.T) {
	ns := kernelNS(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	r, mode := newKernelRedirector(t, Config{})
	if err := r.Apply(ns); err != nil {
		t.Fatal(err)
	}
	if drift, err := r.Check(ns); err != nil || len(drift) != 0 {
		t.Fatalf("Check after Apply = %q, %v", drift, err)
	}
	installed := strings.Join(weftLines(t, ns, mode), "\n")

	iptablesBin := "iptables-" + string(mode)
	if _, err := exec.LookPath(iptablesBin); err != nil {
		iptablesBin = "iptables"
	}
	inHand := func(argv ...string) {
		t.Helper()
		err := ns.Do(func() error {
			out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
			if err != nil {
				t.Errorf("%v: %v: %s", argv, err, out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	inHand(iptablesBin, "-t", "nat", "-F", ChainPrerouting)
	inHand(iptablesBin, "-t", "mangle", "-D", "OUTPUT", "-j", ChainOutput)
	inHand("ip", "rule", "del", "fwmark", "0x111/0xfff", "lookup", "100")

	drift, err := r.Check(ns)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(drift, "\n")
	for _, want := range []string{
		"ip rule fwmark 0x111/0xfff lookup 100 missing",
		"nat/WEFT_PRERT: rule missing: -s 169.254.7.127/32",
		"--to-ports 15006",
		"mangle/OUTPUT: jump missing: -j WEFT_OUTPUT",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("drift lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "route local") || strings.Contains(got, "nat/WEFT_OUTPUT") {
		t.Errorf("drift names parts that are in place:\n%s", got)
	}

	if err := r.Apply(ns); err != nil {
		t.Fatalf("repair: %v", err)
	}
	if drift, err := r.Check(ns); err != nil || len(drift) != 0 {
		t.Fatalf("Check after repair = %q, %v", drift, err)
	}
	if after := strings.Join(weftLines(t, ns, mode), "\n"); after != installed {
		t.Errorf("repaired rules differ:\nbefore:\n%s\nafter:\n%s", installed, after)
	}
	checkRouting(t, ns, true)

	// With the rules' listing known good, Check takes the short path; a
	// routing change alone is still seen, and so is a rule change.
	inHand("ip", "route", "del", "local", "0.0.0.0/0", "dev", "lo", "table", "100")
	if drift, err := r.Check(ns); err != nil || len(drift) != 1 || drift[0] != "route local 0.0.0.0/0 dev lo table 100 missing" {
		t.Fatalf("Check after ip route del = %q, %v", drift, err)
	}
	inHand(iptablesBin, "-t", "nat", "-A", ChainOutput, "-p", "udp", "-j", "ACCEPT")
	if drift, err := r.Check(ns); err != nil || len(drift) != 2 || drift[1] != "nat/WEFT_OUTPUT: 1 rule(s) that Weft did not install" {
		t.Fatalf("Check after an added rule = %q, %v", drift, err)
	}
	if err := r.Apply(ns); err != nil {
		t.Fatal(err)
	}
	if drift, err := r.Check(ns); err != nil || len(drift) != 0 {
		t.Fatalf("Check after the second repair = %q, %v", drift, err)
	}
}
