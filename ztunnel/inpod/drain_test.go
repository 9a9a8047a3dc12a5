package inpod

import (
	"context"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
)

// closer is a test connection (a pointer: tracked sets are keyed by it).
type closer struct{ close func() error }

func (c *closer) Close() error { return c.close() }

func closerFunc(f func() error) *closer { return &closer{f} }

// drained runs p.drain(ctx) and reports whether it returned within d.
func drained(p *Pod, ctx context.Context, d time.Duration) bool {
	done := make(chan struct{})
	go func() { defer close(done); p.drain(ctx) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// TestDrainClosesSelfUntrackingConns: at the drain deadline the pod closes
// what is left, and a connection whose Close untracks it (the tunnel's
// QUIC streams, the proxy's HBONE connections) does not hang the drain.
func TestDrainClosesSelfUntrackingConns(t *testing.T) {
	p := newPod("uid", &zdsapi.WorkloadInfo{}, nil, nil)
	var untrack func()
	closed := make(chan struct{})
	untrack, ok := p.Track(closerFunc(func() error { close(closed); untrack(); return nil }))
	if !ok {
		t.Fatal("Track refused before the drain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if !drained(p, ctx, 3*time.Second) {
		t.Fatal("drain did not return after its deadline")
	}
	select {
	case <-closed:
	default:
		t.Error("connection left open at the deadline not closed")
	}
	if p.Context().Err() == nil {
		t.Error("pod context not cancelled after the drain")
	}
}

// TestHold: a hold keeps the drain waiting until it is released, without
// counting as a connection; at the deadline the holder is closed.
func TestHold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release bool // release the hold during the drain
	}{{"released", true}, {"closed at the deadline", false}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPod("uid", &zdsapi.WorkloadInfo{}, nil, nil)
			closed := make(chan struct{}, 1)
			release, ok := p.Hold(closerFunc(func() error { closed <- struct{}{}; return nil }))
			if !ok {
				t.Fatal("Hold refused before the drain")
			}
			if n := p.Connections(); n != 0 {
				t.Errorf("a hold counts as %d connections", n)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if tc.release {
				time.AfterFunc(100*time.Millisecond, release)
			}
			start := time.Now()
			if !drained(p, ctx, 3*time.Second) {
				t.Fatal("drain did not return")
			}
			took := time.Since(start)
			if took < 80*time.Millisecond {
				t.Errorf("drain returned after %v, before the hold ended", took)
			}
			wantClosed := !tc.release
			select {
			case <-closed:
				if !wantClosed {
					t.Error("released holder closed")
				}
			default:
				if wantClosed {
					t.Error("holder not closed at the deadline")
				}
			}
			if tc.release && took > 900*time.Millisecond {
				t.Errorf("drain waited %v for a released hold", took)
			}
			if _, ok := p.Hold(closerFunc(func() error { return nil })); ok {
				t.Error("Hold accepted after the drain")
			}
		})
	}
}
