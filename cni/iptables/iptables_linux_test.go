//go:build linux

package iptables

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/pkg/netns"
)

func kernelNS(t *testing.T) *netns.NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and iptables")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	if err := ns.LoopbackUp(); err != nil {
		t.Fatal(err)
	}
	return ns
}

func saveBinary(mode Mode) string {
	bin := "iptables-" + string(mode) + "-save"
	if _, err := exec.LookPath(bin); err != nil {
		return "iptables-save"
	}
	return bin
}

// weftLines returns the lines of iptables-save output in ns that belong to
// Weft (chain declarations and rules mentioning WEFT_).
func weftLines(t *testing.T, ns *netns.NetNS, mode Mode) []string {
	t.Helper()
	var out []byte
	err := ns.Do(func() error {
		var err error
		out, err = exec.Command(saveBinary(mode)).Output()
		return err
	})
	if err != nil {
		t.Fatalf("iptables-save: %v", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "WEFT_") {
			lines = append(lines, strings.TrimSuffix(strings.TrimSuffix(l, " [0:0]"), " -"))
		}
	}
	return lines
}

func newKernelRedirector(t *testing.T, cfg Config) (*Redirector, Mode) {
	t.Helper()
	mode := DetectMode(context.Background())
	b, err := NewBackend(mode)
	if err != nil {
		t.Fatal(err)
	}
	return NewRedirector(cfg, b, NetlinkRoutes{}), mode
}

func TestKernelApplyRemove(t *testing.T) {
	ns := kernelNS(t)
	r, mode := newKernelRedirector(t, Config{RedirectDNS: true})

	if ok, err := r.Installed(ns); err != nil || ok {
		t.Fatalf("Installed before Apply = %v, %v", ok, err)
	}
	if err := r.Apply(ns); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	first := weftLines(t, ns, mode)
	want := []string{
		"-A PREROUTING -j WEFT_PRERT",
		"-A OUTPUT -j WEFT_OUTPUT",
		"--set-xmark 0x111/0xfff",
		"--restore-mark",
		"-s 169.254.7.127/32 -p tcp",
		"--dport 15008",
		"--to-ports 15006",
		"--to-ports 15001",
		"--to-ports 15053",
	}
	joined := strings.Join(first, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("iptables-save lacks %q:\n%s", w, joined)
		}
	}
	if ok, err := r.Installed(ns); err != nil || !ok {
		t.Fatalf("Installed after Apply = %v, %v", ok, err)
	}
	checkRouting(t, ns, true)

	if err := r.Apply(ns); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if second := weftLines(t, ns, mode); strings.Join(second, "\n") != joined {
		t.Fatalf("second Apply changed rules:\nfirst:\n%s\nsecond:\n%s", joined, strings.Join(second, "\n"))
	}

	for range 2 {
		if err := r.Remove(ns); err != nil {
			t.Fatalf("Remove: %v", err)
		}
	}
	if left := weftLines(t, ns, mode); len(left) != 0 {
		t.Fatalf("rules left after Remove:\n%s", strings.Join(left, "\n"))
	}
	checkRouting(t, ns, false)
	if ok, err := r.Installed(ns); err != nil || ok {
		t.Fatalf("Installed after Remove = %v, %v", ok, err)
	}
}

func checkRouting(t *testing.T, ns *netns.NetNS, want bool) {
	t.Helper()
	err := ns.Do(func() error {
		rules, err := netlink.RuleList(unix.AF_INET)
		if err != nil {
			return err
		}
		found := false
		for _, r := range rules {
			if r.Table == RouteTable && r.Mark == ConnMark {
				found = true
			}
		}
		if found != want {
			t.Errorf("fwmark rule present = %v, want %v", found, want)
		}
		routes, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Table: RouteTable}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		if (len(routes) == 1) != want {
			t.Errorf("table %d routes = %v, want present=%v", RouteTable, routes, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKernelCapture checks the rules do what they are for: outbound TCP
// from the pod lands on 15001, while a socket carrying ztunnel's mark goes
// where it was sent.
func TestKernelCapture(t *testing.T) {
	ns := kernelNS(t)
	r, _ := newKernelRedirector(t, Config{})
	// A route to somewhere outside the pod.
	err := ns.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("10.99.0.1/24")
		if err := netlink.AddrAdd(v, addr); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("peer0")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(peer); err != nil {
			return err
		}
		return netlink.LinkSetUp(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(ns); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lc := &net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		_ = c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, ZtunnelMark) })
		return serr
	}}
	l, err := ns.Listen(ctx, lc, "tcp", "0.0.0.0:15001")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("z"))
			_ = c.Close()
		}
	}()

	c, err := ns.Dial(ctx, &net.Dialer{Timeout: 2 * time.Second}, "tcp", "10.99.0.2:80")
	if err != nil {
		t.Fatalf("outbound connection was not captured: %v", err)
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil || buf[0] != 'z' {
		t.Fatalf("read from capture listener: %q %v", buf, err)
	}
	_ = c.Close()

	marked := &net.Dialer{Timeout: 300 * time.Millisecond, Control: lc.Control}
	if c, err := ns.Dial(ctx, marked, "tcp", "10.99.0.2:80"); err == nil {
		_ = c.Close()
		t.Fatal("a socket with ztunnel's mark was captured")
	}
}

// TestKernelProbeSNAT builds a node and a pod namespace joined by a veth,
// enrolls the pod, and checks that a connection from the node to the pod
// arrives from 169.254.7.127 and is not captured, while other inbound
// traffic is.
func TestKernelProbeSNAT(t *testing.T) {
	node := kernelNS(t)
	pod := kernelNS(t)
	mode := DetectMode(context.Background())
	b, err := NewBackend(mode)
	if err != nil {
		t.Fatal(err)
	}
	// veth: node side 10.98.0.1, pod side 10.98.0.2, default route in the pod.
	err = node.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vpod"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(pod.Fd())}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("10.98.0.1/24")
		if err := netlink.AddrAdd(v, addr); err != nil {
			return err
		}
		return netlink.LinkSetUp(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = pod.Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseAddr("10.98.0.2/24")
		if err := netlink.AddrAdd(l, addr); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP("10.98.0.1")})
	})
	if err != nil {
		t.Fatal(err)
	}

	if err := NewRedirector(Config{}, b, NetlinkRoutes{}).Apply(pod); err != nil {
		t.Fatal(err)
	}
	probe := ProbeSNAT{Tables: b}
	err = node.Do(func() error {
		if err := probe.Ensure(); err != nil {
			return err
		}
		if err := probe.Add("10.98.0.2", "uid-1"); err != nil {
			return err
		}
		return probe.Add("10.98.0.2", "uid-1")
	})
	if err != nil {
		t.Fatalf("probe snat: %v", err)
	}
	var listed map[string]string
	_ = node.Do(func() error { listed, err = probe.List(); return err })
	if err != nil || listed["uid-1"] != "10.98.0.2" || len(listed) != 1 {
		t.Fatalf("List = %v, %v", listed, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	app, err := pod.Listen(ctx, nil, "tcp", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = app.Close() }()
	capture, err := pod.Listen(ctx, nil, "tcp", "0.0.0.0:15006")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = capture.Close() }()
	remote := make(chan string, 2)
	for _, l := range []net.Listener{app, capture} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				remote <- c.LocalAddr().String() + " from " + c.RemoteAddr().(*net.TCPAddr).IP.String()
				_ = c.Close()
			}
		}()
	}
	c, err := node.Dial(ctx, &net.Dialer{Timeout: 2 * time.Second}, "tcp", "10.98.0.2:8080")
	if err != nil {
		t.Fatalf("probe-style connection from the node: %v", err)
	}
	_ = c.Close()
	if got := <-remote; got != "10.98.0.2:8080 from "+ProbeSNATAddr {
		t.Fatalf("node connection arrived as %q, want at the app from %s", got, ProbeSNATAddr)
	}

	// Without the SNAT the same connection is captured by ztunnel's port.
	_ = node.Do(func() error { return probe.Delete("10.98.0.2", "uid-1") })
	c, err = node.Dial(ctx, &net.Dialer{Timeout: 2 * time.Second}, "tcp", "10.98.0.2:8080")
	if err != nil {
		t.Fatalf("connection from the node: %v", err)
	}
	_ = c.Close()
	if got := <-remote; got != "10.98.0.2:15006 from 10.98.0.1" {
		t.Fatalf("uncaptured? got %q", got)
	}

	err = node.Do(func() error {
		for range 2 {
			if err := probe.RemoveAll(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if left := weftLines(t, node, mode); len(left) != 0 {
		t.Fatalf("node rules left: %v", left)
	}
}
