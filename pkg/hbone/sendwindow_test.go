package hbone

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"
)

// TestResetWritersKeepConnWindow: streams reset while their writer has
// taken connection window for a DATA frame it then cannot send must give
// that window back; otherwise every such race shrinks the connection's
// send window for good, until no stream of the connection can send
// though each looks healthy. Once everything is quiet, the server's send
// window must equal the client's receive window: nothing lost.
func TestResetWritersKeepConnWindow(t *testing.T) {
	chunk := make([]byte, 256<<10)
	var mu sync.Mutex
	var srvConn *conn
	h := HandlerFunc(func(ctx context.Context, r *Request) {
		s, err := r.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		srvConn = s.c
		mu.Unlock()
		for ctx.Err() == nil {
			if _, err := s.Write(chunk); err != nil {
				return
			}
		}
	})
	// A dialer or writer left without a reader waits for the client's
	// keepalive tick; a long one (30 s) makes that wait stand far above a
	// slow round's (-race on a loaded machine takes a few seconds).
	const tick = 30 * time.Second
	ts := newSetup(t, h, nil, func(cfg *PoolConfig) {
		cfg.Limits.PingInterval = 2 * tick
		cfg.Limits.PingTimeout = 4 * tick
	})
	for round := range 10 {
		start := time.Now()
		var wg sync.WaitGroup
		for i := range 8 {
			s := ts.dial(t, nil)
			wg.Go(func() {
				_ = s.SetReadDeadline(time.Now().Add(tick / 2))
				// Read while the server writes, so that its writers are
				// busy sending when the reset arrives.
				if _, err := io.CopyN(io.Discard, s, int64(256<<10+(round*8+i)*49999)); err != nil {
					t.Errorf("bulk stream: %v", err)
				}
				_ = s.Close() // unread data: RST_STREAM while the server writes
			})
		}
		wg.Wait()
		// Every stream dialled in the round waits for its response while
		// other streams hold the read role; a dialer left without a reader
		// waits for the keepalive tick (up to 30 s; 5-20 s per round with
		// the default 5 s tick before the fix, under 2 s after it).
		if d := time.Since(start); d > tick/3 {
			t.Errorf("round %d took %s: a dialer or writer waited for a reader", round, d)
		}
	}
	var cli *conn
	ts.pool.mu.Lock()
	for _, e := range ts.pool.entries {
		for _, pc := range e.conns {
			cli = pc.c
		}
	}
	ts.pool.mu.Unlock()
	mu.Lock()
	srv := srvConn
	mu.Unlock()
	if cli == nil || srv == nil {
		t.Fatal("no connection")
	}
	var granted, usable int64
	for range 600 { // until the last frames and updates have landed
		// Nothing reads an idle client connection but the keepalive tick:
		// ask for a reader, as the tick would.
		cli.needReader()
		time.Sleep(20 * time.Millisecond)
		cli.mu.Lock()
		granted = cli.recvWindow
		cli.mu.Unlock()
		srv.mu.Lock()
		usable = srv.sendWindow
		srv.mu.Unlock()
		if granted == usable {
			return
		}
	}
	t.Fatalf("the client granted %d bytes of connection window, the server can use only %d: %d lost to reset streams", granted, usable, granted-usable)
}
