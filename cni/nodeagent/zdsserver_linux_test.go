//go:build linux

package nodeagent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/zds"
)

// fakeZtunnelClient is a ztunnel speaking ZDS over the real socket: it acks
// everything and records what it got, checking each add's netns.
type fakeZtunnelClient struct {
	t    *testing.T
	conn *zds.Conn
	mu   sync.Mutex
	got  []string // "add uid" (with a verified netns), "del uid", "snapshot_sent"
	inos map[string]uint64
	done chan struct{}
}

func dialFakeZtunnel(t *testing.T, ctx context.Context, path string) *fakeZtunnelClient {
	t.Helper()
	// Like ztunnel, retry while the agent is still coming up.
	var c *zds.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err = zds.Dial(ctx, path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.SendHello(ctx, zdsapi.Version_V1); err != nil {
		t.Fatal(err)
	}
	z := &fakeZtunnelClient{t: t, conn: c, inos: map[string]uint64{}, done: make(chan struct{})}
	go z.loop(ctx)
	t.Cleanup(func() { _ = c.Close(); <-z.done })
	return z
}

func (z *fakeZtunnelClient) loop(ctx context.Context) {
	defer close(z.done)
	for {
		req, f, err := z.conn.RecvRequest(ctx)
		if err != nil {
			return
		}
		var entry string
		switch {
		case req.GetAdd() != nil:
			ns, err := netns.FromFile(f)
			if err != nil {
				z.t.Errorf("add %s: fd is not a netns: %v", req.GetAdd().GetUid(), err)
				_ = f.Close()
				_ = z.conn.SendAck(ctx, err)
				continue
			}
			ino, _ := ns.Inode()
			_ = ns.Close()
			z.mu.Lock()
			z.inos[req.GetAdd().GetUid()] = ino
			z.mu.Unlock()
			entry = "add " + req.GetAdd().GetUid()
		case req.GetDel() != nil:
			entry = "del " + req.GetDel().GetUid()
		default:
			entry = zds.RequestKind(req)
		}
		z.mu.Lock()
		z.got = append(z.got, entry)
		z.mu.Unlock()
		if err := z.conn.SendAck(ctx, nil); err != nil {
			return
		}
	}
}

func (z *fakeZtunnelClient) received() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.got)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestZDSServerKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	var handles []*netns.NetNS
	newWorkload := func(uid string) workload {
		ns, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, ns)
		return workload{UID: uid, Name: "pod-" + uid, Namespace: "demo", ServiceAccount: "sa", NetNS: ns}
	}
	defer func() {
		for _, h := range handles {
			_ = h.Close()
		}
	}()
	held := []workload{newWorkload("a"), newWorkload("b")}
	var mu sync.Mutex
	var acked []string
	path := filepath.Join(t.TempDir(), "ztunnel", "ztunnel.sock")
	srv := newZDSServer(path, slog.New(slog.DiscardHandler), newMetrics(),
		func() []workload { mu.Lock(); defer mu.Unlock(); return slices.Clone(held) },
		func(w workload) { mu.Lock(); defer mu.Unlock(); acked = append(acked, w.UID) })

	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func() { close(listening) }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-listening

	// No ztunnel yet: an add waits, then fails clearly.
	actx, acancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if err := srv.Add(actx, newWorkload("early")); !errors.Is(err, ErrNoZtunnel) {
		t.Fatalf("Add without ztunnel = %v", err)
	}
	acancel()

	// The first ztunnel gets the snapshot, with each pod's own netns.
	z1 := dialFakeZtunnel(t, ctx, path)
	waitFor(t, "snapshot on z1", func() bool { return srv.Connected() == 1 })
	if got := z1.received(); !slices.Equal(got, []string{"add a", "add b", "snapshot_sent"}) {
		t.Fatalf("z1 got %v", got)
	}
	for _, w := range held {
		want, _ := w.NetNS.Inode()
		if z1.inos[w.UID] != want {
			t.Fatalf("pod %s: ztunnel got netns %d, want %d", w.UID, z1.inos[w.UID], want)
		}
	}
	mu.Lock()
	if !slices.Equal(acked, []string{"a", "b"}) {
		t.Fatalf("acked %v", acked)
	}
	mu.Unlock()

	c := newWorkload("c")
	if err := srv.Add(ctx, c); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	held = append(held, c)
	mu.Unlock()

	// A second (restarted) ztunnel gets every pod back and takes new adds;
	// deletes go to both.
	z2 := dialFakeZtunnel(t, ctx, path)
	waitFor(t, "snapshot on z2", func() bool { return srv.Connected() == 2 })
	if got := z2.received(); !slices.Equal(got, []string{"add a", "add b", "add c", "snapshot_sent"}) {
		t.Fatalf("z2 got %v", got)
	}
	if err := srv.Add(ctx, newWorkload("d")); err != nil {
		t.Fatal(err)
	}
	srv.Del(ctx, "a")
	if got := z1.received(); !slices.Equal(got, []string{"add a", "add b", "snapshot_sent", "add c", "del a"}) {
		t.Fatalf("z1 got %v", got)
	}
	if got := z2.received(); !slices.Equal(got, []string{"add a", "add b", "add c", "snapshot_sent", "add d", "del a"}) {
		t.Fatalf("z2 got %v", got)
	}

	// The old ztunnel going away is noticed.
	_ = z1.conn.Close()
	waitFor(t, "z1 gone", func() bool { return srv.Connected() == 1 })
	_ = z2.conn.Close()
	waitFor(t, "z2 gone", func() bool { return srv.Connected() == 0 })
}
