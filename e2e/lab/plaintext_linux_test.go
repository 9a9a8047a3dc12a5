package lab

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	weftns "github.com/weftmesh/weft/pkg/netns"
)

func TestParseCounter(t *testing.T) {
	js := `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"counter": {"family": "inet", "name": "leaked", "table": "weft_plaintext", "handle": 1, "packets": 7, "bytes": 900}}]}`
	got, err := parseCounter([]byte(js))
	if err != nil || got != 7 {
		t.Fatalf("parseCounter = %d, %v; want 7", got, err)
	}
	if _, err := parseCounter([]byte(`{"nftables": []}`)); err == nil {
		t.Error("no counter: want an error")
	}
}

func TestParseFlows(t *testing.T) {
	js := `{"nftables": [{"metainfo": {}}, {"set": {"family": "inet", "name": "flows", "elem": [{"concat": ["10.5.1.4", 40000, "10.5.2.4", 8080]}, {"elem": {"val": {"concat": ["10.5.2.4", 8080, "10.5.1.4", 40000]}, "expires": 10}}]}}]}`
	got, err := parseFlows([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.5.1.4:40000 -> 10.5.2.4:8080", "10.5.2.4:8080 -> 10.5.1.4:40000"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("parseFlows = %q, want %q", got, want)
	}
}

// TestPlaintextRulesParse checks the detector's script with nft's own
// parser (-c: check only, nothing is installed).
func TestPlaintextRulesParse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("nft -c needs root")
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft is not installed")
	}
	script := strings.Replace(plaintextRules(), "delete table inet "+plaintextTable+"\n", "", 1)
	f := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nft, "-c", "-f", f).CombinedOutput(); err != nil {
		t.Fatalf("nft rejects the detector's rules: %v\n%s\n%s", err, out, script)
	}
}

// TestPlaintextRulesCount installs the detector's rules in a router
// namespace between two hosts and checks, with real traffic, that payload
// on HBONE's port is not counted and payload on any other port is, in both
// directions, and that the flow is recorded.
func TestPlaintextRulesCount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, bin := range []string{"nft", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s is not installed", bin)
		}
	}
	ctx := t.Context()
	prefix := fmt.Sprintf("wt-lab-%04x", rand.IntN(0x10000))
	a, r, b := prefix+"-a", prefix+"-r", prefix+"-b"
	ipCmd := func(args ...string) {
		t.Helper()
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, n := range []string{a, r, b} {
		ipCmd("netns", "add", n)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n).Run() })
	}
	ipCmd("link", "add", "eth0", "netns", a, "type", "veth", "peer", "name", "ra", "netns", r)
	ipCmd("link", "add", "eth0", "netns", b, "type", "veth", "peer", "name", "rb", "netns", r)
	for _, c := range [][]string{
		{"-n", a, "addr", "add", "10.250.1.2/24", "dev", "eth0"},
		{"-n", b, "addr", "add", "10.250.2.2/24", "dev", "eth0"},
		{"-n", r, "addr", "add", "10.250.1.1/24", "dev", "ra"},
		{"-n", r, "addr", "add", "10.250.2.1/24", "dev", "rb"},
		{"-n", a, "link", "set", "eth0", "up"}, {"-n", b, "link", "set", "eth0", "up"},
		{"-n", r, "link", "set", "ra", "up"}, {"-n", r, "link", "set", "rb", "up"},
		{"-n", a, "route", "add", "default", "via", "10.250.1.1"},
		{"-n", b, "route", "add", "default", "via", "10.250.2.1"},
	} {
		ipCmd(c...)
	}
	rPath := filepath.Join(weftns.NamedDir, r)
	if err := weftns.Do(rPath, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nftIn(ctx, rPath, plaintextRules()); err != nil {
		t.Fatal(err)
	}
	if err := nftIn(ctx, rPath, "add element inet "+plaintextTable+" watched { 10.250.1.2, 10.250.2.2 }\n"); err != nil {
		t.Fatal(err)
	}
	nsA, err := weftns.Open(filepath.Join(weftns.NamedDir, a))
	if err != nil {
		t.Fatal(err)
	}
	defer nsA.Close()
	nsB, err := weftns.Open(filepath.Join(weftns.NamedDir, b))
	if err != nil {
		t.Fatal(err)
	}
	defer nsB.Close()

	leaked := func() uint64 {
		t.Helper()
		var out bytes.Buffer
		argv := []string{"nft", "-j", "list", "counter", "inet", plaintextTable, "leaked"}
		if err := ExecIn(ctx, rPath, nil, argv, nil, &out, &out); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		n, err := parseCounter(out.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// exchange sends a request from a to b:port and reads the echo.
	exchange := func(port int) {
		t.Helper()
		ln, err := nsB.Listen(ctx, nil, "tcp", fmt.Sprintf("10.250.2.2:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = io.Copy(c, io.LimitReader(c, 11))
		}()
		c, err := nsA.Dial(ctx, &net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("10.250.2.2:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello world")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 11)); err != nil {
			t.Fatal(err)
		}
	}

	exchange(HBONEPort)
	if n := leaked(); n != 0 {
		t.Fatalf("HBONE payload counted as plaintext: %d packets", n)
	}
	exchange(8080)
	if n := leaked(); n != 2 {
		t.Fatalf("plaintext on 8080: counted %d packets, want 2 (request and echo)", n)
	}
	var out bytes.Buffer
	if err := ExecIn(ctx, rPath, nil, []string{"nft", "-j", "list", "set", "inet", plaintextTable, "flows"}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	flows, err := parseFlows(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 2 || !strings.Contains(strings.Join(flows, " "), "10.250.2.2:8080") {
		t.Errorf("flows %q, want the 8080 flow both ways", flows)
	}

	// UDP: QUIC's port is not counted, any other is, both ways.
	datagrams := func(port int) {
		t.Helper()
		pc, err := nsB.ListenPacket(ctx, nil, "udp", fmt.Sprintf("10.250.2.2:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		go func() {
			buf := make([]byte, 64)
			n, from, err := pc.ReadFrom(buf)
			if err == nil {
				_, _ = pc.WriteTo(buf[:n], from)
			}
		}()
		c, err := nsA.Dial(ctx, nil, "udp", fmt.Sprintf("10.250.2.2:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello udp")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
	}
	datagrams(HBONEPort)
	if n := leaked(); n != 2 {
		t.Fatalf("QUIC port counted as plaintext: %d packets, want still 2", n)
	}
	datagrams(9001)
	if n := leaked(); n != 4 {
		t.Fatalf("plaintext udp on 9001: counted %d packets in all, want 4", n)
	}
}
