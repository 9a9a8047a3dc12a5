//go:build linux

package tunnel

import (
	"context"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/hbone3"
)

// TestQUICServerPodReenrolled removes the server pod from the manager and
// adds it again on the same netns (a namespace unenrolled and enrolled
// again): the removed pod's QUIC server tells the client that its
// connection ended before the pod's socket is closed, so the client's
// next tunnel dials a new connection to the pod's new socket at once,
// over QUIC, instead of sending a CONNECT on the dead pooled connection
// and waiting for the QUIC timeout before falling back to HTTP/2. With a
// stream open during the drain the same holds once the drain ends it.
// When the goodbye is lost (UDP from the server dropped meanwhile) the
// pod's new server answers the old connection with a stateless reset and
// the client retries on a new connection at once.
func TestQUICServerPodReenrolled(t *testing.T) {
	for _, tc := range []struct {
		name       string
		streamOpen bool
		closeLost  bool
	}{{"idle connection", false, false}, {"stream open during the drain", true, false}, {"close lost", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, nil)
			const quicTimeout = 2 * time.Second
			c, _ := n.clientTimeout(t, n.certs, quicTimeout)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := c.Connect(ctx, n.request())
			if err != nil {
				t.Fatal(err)
			}
			echo(t, conn)
			if got := transportOf(conn); got != hbone3.TransportQUIC {
				t.Fatalf("first connect: transport = %s, want %s", got, hbone3.TransportQUIC)
			}
			if !tc.streamOpen {
				_ = conn.Close()
			} else {
				defer conn.Close()
			}
			// op "-A" drops what the server pod sends the client over QUIC, "-D" stops it.
			drop := func(op string) []string {
				return []string{"ip", "netns", "exec", n.prefix + "a", "iptables", "-w", op, "INPUT", "-p", "udp", "--sport", "15008", "-j", "DROP"}
			}
			if tc.closeLost {
				sh(t, drop("-A")...)
			}
			old := n.pods["b"]
			n.mgr.Del("uid-b")
			select {
			case <-old.Context().Done(): // drained (the held stream: at the 1 s deadline)
			case <-ctx.Done():
				t.Fatal("server pod not drained")
			}
			if tc.closeLost {
				time.Sleep(200 * time.Millisecond) // the old server's socket closes
				if got := c.quic.Conns(); got != 1 {
					t.Fatalf("client pool holds %d live connections, want the one whose close was lost", got)
				}
				sh(t, drop("-D")...)
			} else {
				// The client learns that its connection ended.
				deadline := time.Now().Add(3 * time.Second)
				for c.quic.Conns() != 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if got := c.quic.Conns(); got != 0 {
					t.Errorf("client pool holds %d live connections to the removed server pod", got)
				}
			}
			n.add(t, "b")
			start := time.Now()
			conn2, err := c.Connect(ctx, n.request())
			if err != nil {
				t.Fatal(err)
			}
			defer conn2.Close()
			echo(t, conn2)
			took := time.Since(start)
			if got := transportOf(conn2); got != hbone3.TransportQUIC {
				t.Errorf("connect after re-enrolment: transport = %s after %v, want %s", got, took.Round(time.Millisecond), hbone3.TransportQUIC)
			}
			if took > quicTimeout/2 {
				t.Errorf("connect after re-enrolment took %v", took)
			}
		})
	}
}
