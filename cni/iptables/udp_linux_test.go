//go:build linux

package iptables

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// udpSockopts returns a Control setting IP_TRANSPARENT, SO_REUSEADDR, SO_MARK
// 0x539 (unless unmarked) and (for the listener) IP_RECVORIGDSTADDR.
func udpSockopts(origDst bool, unmarked ...bool) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			opts := [][3]int{{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1}, {unix.SOL_IP, unix.IP_TRANSPARENT, 1}}
			if len(unmarked) == 0 || !unmarked[0] {
				opts = append(opts, [3]int{unix.SOL_SOCKET, unix.SO_MARK, ZtunnelMark})
			}
			for _, o := range opts {
				if serr = unix.SetsockoptInt(int(fd), o[0], o[1], o[2]); serr != nil {
					return
				}
			}
			if origDst {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVORIGDSTADDR, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// readOrigDst reads one datagram and the original destination TPROXY kept.
func readOrigDst(t *testing.T, c *net.UDPConn) (payload string, src, origDst netip.AddrPort) {
	t.Helper()
	b, oob := make([]byte, 1500), make([]byte, 256)
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, oobn, _, from, err := c.ReadMsgUDPAddrPort(b, oob)
	if err != nil {
		t.Fatalf("read on the tproxy listener: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_ORIGDSTADDR && len(m.Data) >= 8 {
			ip := netip.AddrFrom4([4]byte(m.Data[4:8]))
			origDst = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(m.Data[2:4]))
		}
	}
	return string(b[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), origDst
}

// TestKernelUDPCapture proves the UDP capture path in a real netns: an
// application datagram to an outside address lands on the TPROXY listener
// with its original destination; a reply from a transparent socket bound
// to that destination reaches the application from it; the flow's next
// datagrams go to that socket; DNS and ztunnel's own datagrams are not
// captured.
func TestKernelUDPCapture(t *testing.T) {
	ns := kernelNS(t)
	mode := DetectMode(context.Background())
	b, err := NewBackend(mode)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRedirector(Config{CaptureUDP: true}, b, NetlinkRoutes{CaptureUDP: true})
	err = ns.Do(func() error {
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
	if drift, err := r.Check(ns); err != nil || len(drift) != 0 {
		t.Fatalf("Check after Apply = %q, %v", drift, err)
	}
	ctx := context.Background()
	lnPC, err := ns.ListenPacket(ctx, &net.ListenConfig{Control: udpSockopts(true)}, "udp4",
		net.JoinHostPort(UDPListenAddr, port(UDPPort)))
	if err != nil {
		t.Fatal(err)
	}
	ln := lnPC.(*net.UDPConn)
	defer ln.Close()

	appPC, err := ns.ListenPacket(ctx, nil, "udp4", "10.99.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := appPC.(*net.UDPConn)
	defer app.Close()
	dst := netip.MustParseAddrPort("10.99.0.7:5353")
	if _, err := app.WriteToUDPAddrPort([]byte("hello"), dst); err != nil {
		t.Fatal(err)
	}
	payload, src, orig := readOrigDst(t, ln)
	appAddr := netip.AddrPortFrom(netip.MustParseAddr("10.99.0.1"), uint16(app.LocalAddr().(*net.UDPAddr).Port))
	if payload != "hello" || src != appAddr || orig != dst {
		t.Fatalf("listener got %q from %s to %s, want %q from %s to %s", payload, src, orig, "hello", appAddr, dst)
	}

	// The reply comes from the original destination. It is unmarked, as
	// ztunnel's replies are: a marked one would set connmark 0x111 on the
	// application's flow, and its next datagrams would skip capture.
	d := &net.Dialer{Control: udpSockopts(false, true), LocalAddr: net.UDPAddrFromAddrPort(dst)}
	flowC, err := ns.Dial(ctx, d, "udp4", appAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	flow := flowC.(*net.UDPConn)
	defer flow.Close()
	if _, err := flow.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	_ = app.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := app.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("application read: %v", err)
	}
	if got := netip.AddrPortFrom(from.Addr().Unmap(), from.Port()); string(buf[:n]) != "reply" || got != dst {
		t.Fatalf("application got %q from %s, want %q from %s", buf[:n], got, "reply", dst)
	}

	// The flow's next datagram is still captured: TPROXY hands it to the
	// connected socket of the flow.
	if _, err := app.WriteToUDPAddrPort([]byte("again"), dst); err != nil {
		t.Fatal(err)
	}
	_ = flow.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err = flow.Read(buf); err != nil || string(buf[:n]) != "again" {
		t.Fatalf("flow socket read %q, %v; want again", buf[:n], err)
	}

	// DNS and ztunnel-marked datagrams go out untouched: the listener sees
	// nothing (they leave through eth0).
	if _, err := app.WriteToUDPAddrPort([]byte("dns"), netip.MustParseAddrPort("10.99.0.7:53")); err != nil {
		t.Fatal(err)
	}
	markedPC, err := ns.ListenPacket(ctx, &net.ListenConfig{Control: udpSockopts(false)}, "udp4", "10.99.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer markedPC.Close()
	if _, err := markedPC.WriteTo([]byte("ztunnel"), net.UDPAddrFromAddrPort(dst)); err != nil {
		t.Fatal(err)
	}
	_ = ln.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, from, err := ln.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("listener captured %q from %s, want nothing", buf[:n], from)
	}

	for range 2 {
		if err := r.Remove(ns); err != nil {
			t.Fatal(err)
		}
	}
	err = ns.Do(func() error {
		rules, err := netlink.RuleList(unix.AF_INET)
		if err != nil {
			return err
		}
		for _, rl := range rules {
			if rl.Mark == UDPMark {
				t.Errorf("udp fwmark rule left after Remove: %v", rl)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if left := weftLines(t, ns, mode); len(left) != 0 {
		t.Fatalf("rules left after Remove:\n%s", strings.Join(left, "\n"))
	}
}

// Without its fwmark rule the UDP capture is reported as drift.
func TestUDPRouteDrift(t *testing.T) {
	routes := &RouteRecorder{CaptureUDP: true}
	drift, err := routes.Drift()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(drift, "\n"), driftUDPIPRule) {
		t.Fatalf("drift %q lacks %q", drift, driftUDPIPRule)
	}
	if err := routes.Ensure(); err != nil {
		t.Fatal(err)
	}
	if drift, _ := routes.Drift(); len(drift) != 0 {
		t.Fatalf("drift after Ensure = %q", drift)
	}
}
