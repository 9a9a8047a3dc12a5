package xds

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/weftmesh/weft/istiod-lite/model"
)

func TestFullPushSlotsBounded(t *testing.T) {
	s := New(model.New(model.Config{}, slog.New(slog.DiscardHandler)), Config{})
	ctx := context.Background()
	conns := make([]*conn, maxFullPushes+1)
	for i := range conns {
		c := newConn(s, "c", "peer", "", 0)
		w := newWatch()
		w.full = true
		c.watches[model.AddressType] = w
		conns[i] = c
	}
	var releases []func()
	for _, c := range conns[:maxFullPushes] {
		releases = append(releases, s.fullPushSlot(ctx, c, model.AddressType))
	}
	got := make(chan func())
	go func() { got <- s.fullPushSlot(ctx, conns[maxFullPushes], model.AddressType) }()
	select {
	case <-got:
		t.Fatalf("a full push beyond %d started", maxFullPushes)
	case <-time.After(20 * time.Millisecond):
	}
	// An incremental push never waits.
	inc := newConn(s, "inc", "peer", "", 0)
	inc.watches[model.AddressType] = newWatch()
	done := make(chan struct{})
	go func() { s.fullPushSlot(ctx, inc, model.AddressType)(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("an incremental push waited for a full-push slot")
	}
	releases[0]()
	select {
	case r := <-got:
		r()
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting full push did not start after a slot was given back")
	}
	// Waiting ends with the context, without a slot.
	releases = releases[1:]
	s.fullPushes <- struct{}{} // fill the slot just freed
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- s.fullPushSlot(cctx, conns[0], model.AddressType) }()
	cancel()
	select {
	case r := <-got:
		r() // a no-op: must not free a slot it never took
	case <-time.After(5 * time.Second):
		t.Fatal("waiting did not end with the context")
	}
	if n := len(s.fullPushes); n != maxFullPushes {
		t.Errorf("%d slots taken, want %d", n, maxFullPushes)
	}
	for _, r := range releases {
		r()
	}
	<-s.fullPushes
}
