package iptables

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Fatalf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func dumpPod(tables *Recorder, routes *RouteRecorder) string {
	return tables.Dump() + "# routing\n" + routes.Dump()
}

func mutatingOps(ops []string) []string {
	var out []string
	for _, o := range ops {
		if !strings.HasPrefix(o, "-C") {
			out = append(out, o)
		}
	}
	return out
}

func TestInPodGolden(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"inpod", Config{}},
		{"inpod-dns", Config{RedirectDNS: true}},
		{"inpod-udp", Config{CaptureUDP: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tables, routes := NewRecorder(), &RouteRecorder{CaptureUDP: tc.cfg.CaptureUDP}
			p := InPod{Config: tc.cfg, Tables: tables, Routes: routes}
			if ok, _ := p.Installed(); ok {
				t.Fatal("Installed before Apply")
			}
			if err := p.Apply(); err != nil {
				t.Fatal(err)
			}
			first := dumpPod(tables, routes)
			golden(t, tc.name+".golden", first)
			if ok, _ := p.Installed(); !ok {
				t.Fatal("not Installed after Apply")
			}

			// Applying again changes nothing: same state, no iptables writes.
			tables.Ops = nil
			if err := p.Apply(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(first, dumpPod(tables, routes)); diff != "" {
				t.Fatalf("second Apply changed state:\n%s", diff)
			}
			if ops := mutatingOps(tables.Ops); len(ops) != 0 {
				t.Fatalf("second Apply wrote rules: %q", ops)
			}

			for range 2 {
				if err := p.Remove(); err != nil {
					t.Fatal(err)
				}
				if got := dumpPod(tables, routes); got != "# routing\n" {
					t.Fatalf("after Remove:\n%s", got)
				}
			}
		})
	}
}

// An agent restarting with a different config (or finding rules from an
// older version) converges on the new golden state.
func TestInPodAdoptsAndConverges(t *testing.T) {
	tables, routes := NewRecorder(), &RouteRecorder{}
	if err := (InPod{Config: Config{}, Tables: tables, Routes: routes}).Apply(); err != nil {
		t.Fatal(err)
	}
	// Someone appended a stray rule to one of our chains.
	if err := tables.Append("nat", ChainOutput, "-j", "RETURN"); err != nil {
		t.Fatal(err)
	}
	p := InPod{Config: Config{RedirectDNS: true}, Tables: tables, Routes: routes}
	if err := p.Apply(); err != nil {
		t.Fatal(err)
	}
	golden(t, "inpod-dns.golden", dumpPod(tables, routes))
}

func TestApplyReportsBackendErrors(t *testing.T) {
	tables := NewRecorder()
	boom := errors.New("boom")
	tables.Fail = func(op string) error {
		if strings.HasPrefix(op, "-I ") {
			return boom
		}
		return nil
	}
	err := InPod{Tables: tables, Routes: &RouteRecorder{}}.Apply()
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestProbeSNATGolden(t *testing.T) {
	tables := NewRecorder()
	p := ProbeSNAT{Tables: tables}
	for range 2 {
		if err := p.Ensure(); err != nil {
			t.Fatal(err)
		}
		if err := p.Add("10.244.1.5", "uid-a"); err != nil {
			t.Fatal(err)
		}
		if err := p.Add("10.244.1.6", "uid-b"); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "probe-snat.golden", tables.Dump())

	got, err := p.List()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"uid-a": "10.244.1.5", "uid-b": "10.244.1.6"}, got); diff != "" {
		t.Fatalf("List (-want +got):\n%s", diff)
	}
	if err := p.Add("fd00::1", "uid-c"); err == nil {
		t.Fatal("Add accepted an IPv6 address")
	}
	if err := p.Delete("10.244.1.5", "uid-a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete("10.244.1.5", "uid-a"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	// Ensure keeps existing pod rules.
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.List(); len(got) != 1 {
		t.Fatalf("after Delete+Ensure: %v", got)
	}
	for range 2 {
		if err := p.RemoveAll(); err != nil {
			t.Fatal(err)
		}
	}
	if d := tables.Dump(); d != "" {
		t.Fatalf("after RemoveAll:\n%s", d)
	}
}

func TestParseProbeRule(t *testing.T) {
	cases := []struct{ line, uid, ip string }{
		{`-A WEFT_POSTRT -d 10.1.2.3/32 -p tcp -m owner --socket-exists -m comment --comment weft-probe:abc -j SNAT --to-source 169.254.7.127`, "abc", "10.1.2.3"},
		{`-A WEFT_POSTRT -d 10.1.2.3/32 -m comment --comment "weft-probe:x y" -j SNAT`, "x", "10.1.2.3"},
		{`-A WEFT_POSTRT -d 10.1.2.3/32 -j SNAT`, "", "10.1.2.3"},
		{`-N WEFT_POSTRT`, "", ""},
	}
	for _, tc := range cases {
		uid, ip := parseProbeRule(tc.line)
		if uid != tc.uid || ip != tc.ip {
			t.Errorf("parseProbeRule(%q) = %q, %q; want %q, %q", tc.line, uid, ip, tc.uid, tc.ip)
		}
	}
}

func TestChooseMode(t *testing.T) {
	cases := []struct {
		name, nft, legacy string
		want              Mode
	}{
		{"both empty", "", "", ModeNFT},
		{"nft rules", "*nat\n-A POSTROUTING -j MASQUERADE\n", "", ModeNFT},
		{"legacy rules", "", "*nat\n-A POSTROUTING -j MASQUERADE\n-A KUBE -j X\n", ModeLegacy},
		{"tie", "-A X\n", "-A Y\n", ModeNFT},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := chooseMode(tc.nft, tc.legacy); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	for _, s := range []string{"", "auto", "nft", "legacy"} {
		if _, err := ParseMode(s); err != nil {
			t.Errorf("ParseMode(%q): %v", s, err)
		}
	}
	if _, err := ParseMode("bpf"); err == nil {
		t.Error("ParseMode(bpf) succeeded")
	}
}
