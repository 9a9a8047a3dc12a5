//go:build linux

package inpod

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestDialFromClientSharesPorts: a connection bound to a client's address
// takes its port at connect, per destination, so two connections from the
// same client to two apps of the pod share a port. The netns's port range
// is cut to one port: a port taken at bind would leave the second dial
// EADDRINUSE. Both dial paths are covered: the pooled sockets and the
// dialer used when the pool is empty (or for IPv6).
func TestDialFromClientSharesPorts(t *testing.T) {
	needRoot(t)
	const onlyPort = 40000
	for _, tc := range []struct {
		name   string
		pooled bool
	}{{"pooled socket", true}, {"dialer", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := podNS(t)
			if err := ns.Do(func() error {
				return os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte("40000 40000"), 0o644)
			}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Fixed ports: the one ephemeral port is the clients'.
			apps := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("127.0.0.1:8081")}
			for _, app := range apps {
				ln, err := ns.Listen(ctx, nil, "tcp4", app.String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = ln.Close() })
			}
			s := netnsSockets{ns: ns}
			if tc.pooled {
				s = newNetnsSockets(ns)
				defer s.Close()
				s.pool.inflight.Add(1)
				s.pool.refill() // a new pool is empty until its first take
			}
			client := netip.MustParseAddr("127.0.0.5")
			for _, app := range apps {
				c, err := s.Dial(ctx, client, app)
				if err != nil {
					t.Fatalf("dial %s from %s: %v", app, client, err)
				}
				t.Cleanup(func() { _ = c.Close() })
				if got := c.LocalAddr().(*net.TCPAddr).AddrPort(); got != netip.AddrPortFrom(client, onlyPort) {
					t.Errorf("dial %s: local address %s, want %s:%d", app, got, client, onlyPort)
				}
			}
			if tc.pooled {
				s.pool.mu.Lock()
				left := len(s.pool.fds)
				s.pool.mu.Unlock()
				if left != socketPoolSize-len(apps) {
					t.Errorf("%d pooled sockets left, want %d: the dials did not use the pool", left, socketPoolSize-len(apps))
				}
			}
		})
	}
}
