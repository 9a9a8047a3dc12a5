//go:build e2e

package mesh_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/exepages"
)

// waitPagesReleased waits until process pid (a ztunnel or a waypoint) has
// dropped its mappings of its executable's start-up pages and returns how
// many KiB of them were still resident then. Before a release 87-98% of
// the read-only mappings are resident; after it, what the process keeps
// using (20-63% in the lab, most of it the function tables that stack
// scans and tracebacks read).
func waitPagesReleased(ctx context.Context, t *testing.T, pid int, what string) int {
	t.Helper()
	var released int
	eventually(ctx, t, 90*time.Second, what+"'s executable pages released", func() error {
		resident, mapped, err := exepages.Resident(pid)
		if err != nil {
			return err
		}
		if mapped == 0 || resident*4 > mapped*3 {
			return fmt.Errorf("%d of %d KiB of the executable resident, want under three quarters", resident, mapped)
		}
		released = resident
		return nil
	})
	return released
}

// testPageRelease: the waypoint drops its mappings of the executable's
// start-up pages once its L7 configuration has settled, and serves
// requests after that as before.
func (w *wpEnv) testPageRelease(ctx context.Context, t *testing.T) {
	wp := w.waypointPod(ctx, t)
	pids, err := w.e.podPIDs(ctx, wp, "waypoint")
	if err != nil || len(pids) != 1 {
		t.Fatalf("waypoint in %s: want one process, got %v (%v)", wp.Name, pids, err)
	}
	released := waitPagesReleased(ctx, t, pids[0], "the waypoint")
	before := w.requests(ctx, t)
	if s := w.summary(ctx, t, "--url", w.url("/after-release"), "--count", "10"); s.Status["200"] != 10 {
		t.Fatalf("calls through the waypoint after the release: %+v", s)
	}
	if got := w.requests(ctx, t) - before; got < 10 {
		t.Errorf("waypoint counted %v of 10 requests after the release", got)
	}
	resident, mapped, err := exepages.Resident(pids[0])
	if err != nil {
		t.Fatalf("waypoint pid %d after the calls: %v", pids[0], err)
	}
	t.Logf("%d of %d KiB of the waypoint's executable resident once released, %d after the calls", released, mapped, resident)
}

// TestZtunnelReleasesStartupPages: once its pods have settled, a ztunnel
// drops its mappings of the executable's start-up pages (package
// initializers and pod enrollment leave nearly all of it resident
// otherwise), and it carries the mesh's traffic after that as before.
func TestZtunnelReleasesStartupPages(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	// Enrolling the namespace's pods runs enrollment code in the ztunnels;
	// each releases the pages 10 s after its last enrollment.
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	z := e.ztunnelOn(ctx, t, client.Spec.NodeName)
	pids, err := e.podPIDs(ctx, z, "ztunnel")
	if err != nil || len(pids) != 1 {
		t.Fatalf("ztunnel in %s: want one process, got %v (%v)", z.Name, pids, err)
	}
	pid := pids[0]

	released := waitPagesReleased(ctx, t, pid, "ztunnel")

	for range 3 {
		if !e.viaHBONE(ctx, t, client, server, "spiffe://cluster.local/ns/demo/sa/client") {
			t.Fatal("after the release, a call from the client was not counted as mTLS from its identity")
		}
	}
	resident, mapped, err := exepages.Resident(pid)
	if err != nil {
		t.Fatalf("ztunnel pid %d after the calls: %v", pid, err)
	}
	t.Logf("%d of %d KiB of ztunnel's executable resident once released, %d after the calls", released, mapped, resident)
	if now, err := e.podPIDs(ctx, z, "ztunnel"); err != nil || len(now) != 1 || now[0] != pid {
		t.Errorf("ztunnel process after the calls: %v (%v), want pid %d still running", now, err, pid)
	}
}
