//go:build linux

package udp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/wds"
)

// TestRefusedFlowRetried: an application that keeps sending from one
// socket to a destination that refused its flow gets through once the
// refusal's cause is gone: at once after a WDS change (the DENY removed
// from the policies), and within RetryFailed when nothing changed here
// (the destination's ztunnel stopped refusing). Before, the refused flow
// dropped its datagrams until it had been idle for the idle timeout, which
// the application's own resends kept from happening.
func TestRefusedFlowRetried(t *testing.T) {
	needKernel(t)
	for _, tc := range []struct {
		name   string
		port   string
		refuse func(m *mesh)
		allow  func(t *testing.T, m *mesh)
		within time.Duration
	}{
		{"DENY removed", "7001", func(*mesh) {}, func(t *testing.T, m *mesh) {
			if err := m.store.Apply(wds.AuthorizationType, nil, []string{"ns1/deny-7001"}); err != nil {
				t.Fatal(err)
			}
		}, 700 * time.Millisecond},
		{"destination stops refusing", "7000", func(m *mesh) { m.tunnels.refuse.Store(true) },
			func(_ *testing.T, m *mesh) { m.tunnels.refuse.Store(false) }, DefaultRetryFailed + 700*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			m := newMesh(t, 30*time.Second)
			tc.refuse(m)
			pc, err := m.nsC.ListenPacket(ctx, nil, "udp4", ":0")
			if err != nil {
				t.Fatal(err)
			}
			app := pc.(*net.UDPConn)
			defer app.Close()
			to := netip.MustParseAddrPort(serverIP + ":" + tc.port)
			// send sends every 100 ms (as an application retrying) until an
			// answer comes or d ends.
			send := func(d time.Duration) (string, error) {
				buf := make([]byte, 2048)
				end := time.Now().Add(d)
				for {
					if _, err := app.WriteToUDPAddrPort([]byte("ping"), to); err != nil {
						return "", err
					}
					_ = app.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
					n, _, err := app.ReadFromUDPAddrPort(buf)
					if err == nil {
						return string(buf[:n]), nil
					}
					if time.Now().After(end) {
						return "", err
					}
				}
			}
			if got, err := send(500 * time.Millisecond); err == nil {
				t.Fatalf("refused destination answered %q", got)
			}
			tc.allow(t, m)
			start := time.Now()
			got, err := send(5 * time.Second)
			if err != nil || !strings.HasPrefix(got, "ping from") {
				t.Fatalf("same socket after the refusal's cause went: %q, %v (flows %+v)", got, err, m.svc.Flows())
			}
			if took := time.Since(start); took > tc.within {
				t.Errorf("answered after %v, want within %v", took.Round(time.Millisecond), tc.within)
			}
		})
	}
}
