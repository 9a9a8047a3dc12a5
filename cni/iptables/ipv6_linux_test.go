//go:build linux

package iptables

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestKernelIPv6 applies the dual-stack capture in a throwaway netns with
// ip6tables and netlink, checks the IPv6 rules, ip -6 rule and local ::/0
// route are there, that removing the ip -6 rule by hand is reported and
// repaired, and that Remove leaves nothing in either family.
func TestKernelIPv6(t *testing.T) {
	ns := kernelNS(t)
	for _, bin := range []string{"ip6tables", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	mode := DetectMode(context.Background())
	t4, err := NewBackend(mode)
	if err != nil {
		t.Fatal(err)
	}
	t6, err := NewBackend6(mode)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRedirector(Config{}, t4, NetlinkRoutes{}).WithIPv6(t6, NetlinkRoutes{IPv6: true})
	run := func(argv ...string) string {
		t.Helper()
		var out []byte
		err := ns.Do(func() error {
			var err error
			out, err = exec.Command(argv[0], argv[1:]...).CombinedOutput()
			return err
		})
		if err != nil {
			t.Fatalf("%v: %v: %s", argv, err, out)
		}
		return string(out)
	}
	save6 := "ip6tables-save"
	if _, err := exec.LookPath("ip6tables-" + string(mode) + "-save"); err == nil {
		save6 = "ip6tables-" + string(mode) + "-save"
	}
	state := func() string {
		var keep []string
		for _, l := range strings.Split(run(save6), "\n") {
			if strings.Contains(l, "WEFT_") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n") + "\n" + run("ip", "-6", "rule") + run("ip", "-6", "route", "show", "table", "100")
	}

	if err := r.Apply(ns); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	installed := state()
	for _, want := range []string{
		"! -d ::1/128 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001",
		"--to-ports 15006",
		"-s fd16:9254:7127:1337:ffff:ffff:ffff:ffff/128 -p tcp -j ACCEPT",
		"fwmark 0x111/0xfff lookup 100",
		"local default dev lo",
	} {
		if !strings.Contains(installed, want) {
			t.Errorf("IPv6 capture lacks %q:\n%s", want, installed)
		}
	}
	if drift, err := r.Check(ns); err != nil || len(drift) != 0 {
		t.Fatalf("Check after Apply = %q, %v", drift, err)
	}
	if err := r.Apply(ns); err != nil {
		t.Fatal(err)
	}
	if again := state(); again != installed {
		t.Fatalf("second Apply changed the IPv6 capture:\n%s\n---\n%s", installed, again)
	}

	run("ip", "-6", "rule", "del", "fwmark", "0x111/0xfff", "lookup", "100")
	drift, err := r.Check(ns)
	if err != nil || len(drift) != 1 || drift[0] != "ipv6 ip rule fwmark 0x111/0xfff lookup 100 missing" {
		t.Fatalf("Check after ip -6 rule del = %q, %v", drift, err)
	}
	if err := r.Apply(ns); err != nil {
		t.Fatal(err)
	}
	if repaired := state(); repaired != installed {
		t.Fatalf("repair differs:\n%s\n---\n%s", installed, repaired)
	}

	if err := r.Remove(ns); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if left := state(); strings.Contains(left, "WEFT_") || strings.Contains(left, "lookup 100") || strings.Contains(left, "local default") {
		t.Fatalf("left after Remove:\n%s", left)
	}
	if ok, err := r.Installed(ns); err != nil || ok {
		t.Fatalf("Installed after Remove = %v, %v", ok, err)
	}
	checkRouting(t, ns, false)
}

// TestKernelProbeSNAT6 installs and removes the IPv6 probe SNAT with
// ip6tables in a throwaway namespace standing for the node.
func TestKernelProbeSNAT6(t *testing.T) {
	ns := kernelNS(t)
	if _, err := exec.LookPath("ip6tables"); err != nil {
		t.Skip("ip6tables not installed")
	}
	mode := DetectMode(context.Background())
	b, err := NewBackend6(mode)
	if err != nil {
		t.Fatal(err)
	}
	p := ProbeSNAT{Tables: b, IPv6: true}
	var got map[string]string
	err = ns.Do(func() error {
		for range 2 {
			if err := p.Ensure(); err != nil {
				return err
			}
			if err := p.Add("fd00:10:244:1::5", "uid-a"); err != nil {
				return err
			}
		}
		var err error
		got, err = p.List()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["uid-a"] != "fd00:10:244:1::5" {
		t.Fatalf("List = %v", got)
	}
	if err := ns.Do(func() error {
		if err := p.Delete("fd00:10:244:1::5", "uid-a"); err != nil {
			return err
		}
		return p.RemoveAll()
	}); err != nil {
		t.Fatal(err)
	}
	var out []byte
	_ = ns.Do(func() error { out, err = exec.Command("ip6tables-save", "-t", "nat").Output(); return err })
	if strings.Contains(string(out), "WEFT_") {
		t.Fatalf("left after RemoveAll:\n%s", out)
	}
}
