//go:build linux

package inpod

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/netns"
)

// TestListenersDualStack: in a pod netns with IPv6 each listener is one
// [::] socket that accepts IPv6 and (v4-mapped) IPv4; with IPv6 disabled
// in the netns IPv4 is still accepted.
func TestListenersDualStack(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name      string
		disableV6 bool
	}{{"with IPv6", false}, {"IPv6 disabled in the netns", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ns := podNS(t)
			if tc.disableV6 {
				if err := ns.Do(func() error {
					return os.WriteFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte("1"), 0o644)
				}); err != nil {
					t.Skipf("cannot disable IPv6 in the netns: %v", err)
				}
			}
			h := &echoHandler{pods: map[string]*Pod{}, done: map[string]chan struct{}{}}
			m := NewManager(ManagerConfig{Handler: h, DrainTimeout: time.Second})
			defer m.Close(ctx)
			f, err := os.Open("/proc/self/fd/" + strconv.Itoa(ns.Fd()))
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Add(ctx, "uid", &zdsapi.WorkloadInfo{Name: "p", Namespace: "demo"}, f); err != nil {
				t.Fatal(err)
			}
			pod := m.Pod("uid")
			for _, ln := range []net.Listener{pod.Listeners.Outbound, pod.Listeners.InboundPlain, pod.Listeners.InboundHBONE} {
				if a := ln.Addr().(*net.TCPAddr).AddrPort().Addr(); a != netip.IPv6Unspecified() {
					t.Errorf("listener on %s, want [::]", ln.Addr())
				}
			}
			for _, port := range []uint16{OutboundPort, InboundPlainPort, InboundHBONEPort} {
				c, err := dialIn(t, ns, port)
				if err != nil {
					t.Fatalf("IPv4 to %d: %v", port, err)
				}
				if port == OutboundPort {
					roundTrip(t, c)
				}
				_ = c.Close()
			}
			c6, err := dial6(ns, OutboundPort)
			if tc.disableV6 {
				if err == nil {
					_ = c6.Close()
					t.Log("note: IPv6 loopback still reachable with disable_ipv6")
				}
				return
			}
			if err != nil {
				t.Fatalf("IPv6 to %d: %v", OutboundPort, err)
			}
			roundTrip(t, c6)
			_ = c6.Close()
		})
	}
}

func dial6(ns *netns.NetNS, port uint16) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return ns.Dial(ctx, nil, "tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String())
}
