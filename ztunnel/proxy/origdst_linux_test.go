//go:build linux

package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/netns"
)

// TestOriginalDstDualStack: on a dual-stack [::] listener (as the in-pod
// listeners are), the original destination of a REDIRECTed connection is
// read for IPv4 (v4-mapped socket) and IPv6 alike, in a real netns.
func TestOriginalDstDualStack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, bin := range []string{"ip", "iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	name := "wt-ztod-" + hex.EncodeToString(rnd[:])
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close(); _ = netns.RemoveNamed(name) })
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"},
		{"ip", "link", "set", "d1", "up"},
		{"ip", "addr", "add", "10.99.0.2/24", "dev", "d0"},
		{"ip", "-6", "addr", "add", "fd00:99::2/64", "dev", "d0", "nodad"},
		{"ip", "link", "set", "d0", "up"},
		{"iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "10.99.0.1", "--dport", "80", "-j", "REDIRECT", "--to-ports", "15001"},
		{"ip6tables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "fd00:99::1", "--dport", "80", "-j", "REDIRECT", "--to-ports", "15001"},
	} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ln, err := ns.Listen(context.Background(), nil, "tcp", "[::]:15001")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	for _, dst := range []string{"10.99.0.1:80", "[fd00:99::1]:80"} {
		t.Run(dst, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			c, err := ns.Dial(ctx, nil, "tcp", dst)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = c.Close() }()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = s.Close() }()
			got, err := originalDst(s)
			if err != nil {
				t.Fatal(err)
			}
			if got = netip.AddrPortFrom(got.Addr().Unmap(), got.Port()); got != netip.MustParseAddrPort(dst) {
				t.Errorf("original destination %s, want %s", got, dst)
			}
		})
	}
}
