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
	s.fullPushes.slots <- struct{}{} // fill the slot just freed
	cctx, cancel := context.WithCancel(ctx)
	go func() { got <- s.fullPushSlot(cctx, conns[0], model.AddressType) }()
	cancel()
	select {
	case r := <-got:
		r() // a no-op: must not free a slot it never took
	case <-time.After(5 * time.Second):
		t.Fatal("waiting did not end with the context")
	}
	if n := len(s.fullPushes.slots); n != maxFullPushes {
		t.Errorf("%d slots taken, want %d", n, maxFullPushes)
	}
	for _, r := range releases {
		r()
	}
	<-s.fullPushes.slots
}

func TestOnFullPushesDone(t *testing.T) {
	s := New(model.New(model.Config{}, slog.New(slog.DiscardHandler)), Config{})
	called := make(chan struct{}, 10)
	s.OnFullPushesDone(func() { called <- struct{}{} })
	c := newConn(s, "c", "peer", "", 0)
	w := newWatch()
	w.full = true
	c.watches[model.AddressType] = w
	ctx := context.Background()
	r1 := s.fullPushSlot(ctx, c, model.AddressType)
	r2 := s.fullPushSlot(ctx, c, model.AddressType)
	r1()
	select {
	case <-called:
		t.Fatal("hook called while a full push still runs")
	case <-time.After(fullPushQuiet + 200*time.Millisecond):
	}
	start := time.Now()
	r2()
	select {
	case <-called:
		if d := time.Since(start); d < fullPushQuiet-50*time.Millisecond {
			t.Errorf("hook called after %s, before the quiet period", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("hook not called after the burst")
	}
	select {
	case <-called:
		t.Error("hook called twice for one burst")
	case <-time.After(fullPushQuiet + 200*time.Millisecond):
	}
}

func TestFullPushSlotHeldTooLongIsFreed(t *testing.T) {
	s := New(model.New(model.Config{}, slog.New(slog.DiscardHandler)), Config{})
	ctx := context.Background()
	full := func() *conn {
		c := newConn(s, "c", "peer", "", 0)
		w := newWatch()
		w.full = true
		c.watches[model.AddressType] = w
		return c
	}
	var stuck []func()
	for range maxFullPushes {
		stuck = append(stuck, s.fullPushSlot(ctx, full(), model.AddressType)) // clients that never read
	}
	got := make(chan func(), 1)
	start := time.Now()
	go func() { got <- s.fullPushSlot(ctx, full(), model.AddressType) }()
	select {
	case r := <-got:
		if d := time.Since(start); d < maxFullPushHold-100*time.Millisecond {
			t.Errorf("slot free after %s, before the hold limit", d)
		}
		r()
	case <-time.After(maxFullPushHold + 5*time.Second):
		t.Fatal("slow clients held the full-push slots past the limit")
	}
	for _, r := range stuck {
		r() // late release after the timer freed the slot: no double free
	}
	if n := len(s.fullPushes.slots); n != 0 {
		t.Errorf("%d slots still taken", n)
	}
}
