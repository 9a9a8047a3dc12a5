package hbone

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnReadAheadBoundsBuffering floods streams whose reader never reads
// and counts what the server got to send: the connection window reopens
// for buffered data up to ConnReadAhead, so more than ConnWindow arrives,
// but never more than ConnReadAhead + ConnWindow in all, and each stream
// never more than its own window.
func TestConnReadAheadBoundsBuffering(t *testing.T) {
	const (
		streamWin = 64 << 10
		connWin   = 128 << 10
		chunk     = 4 << 10
	)
	for _, tc := range []struct {
		readAhead int64
		streams   int
		want      int64 // bytes the server can send in all
	}{
		{readAhead: -1, streams: 4, want: connWin},                  // no read-ahead: the connection window alone
		{readAhead: 128 << 10, streams: 3, want: 3 * streamWin},     // under the bound: every stream fills its window
		{readAhead: 128 << 10, streams: 8, want: connWin + 128<<10}, // over it: capped
	} {
		t.Run(fmt.Sprintf("read-ahead %d, %d streams", tc.readAhead, tc.streams), func(t *testing.T) {
			var sent atomic.Int64
			flood := HandlerFunc(func(ctx context.Context, r *Request) {
				s, err := r.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				buf := make([]byte, chunk)
				for ctx.Err() == nil {
					n, err := s.Write(buf)
					sent.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
			lim := Limits{StreamWindow: streamWin, ConnWindow: connWin, ConnReadAhead: tc.readAhead}
			ts := newSetup(t, flood, nil, func(c *PoolConfig) { c.Limits = lim })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for range tc.streams {
				s, err := ts.pool.Dial(ctx, ts.key, "flood:1", nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
			}
			deadline := time.Now().Add(5 * time.Second)
			for sent.Load() < tc.want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond) // anything beyond the bound would arrive now
			if got := sent.Load(); got != tc.want {
				t.Fatalf("server sent %d bytes to streams that are never read, want exactly %d", got, tc.want)
			}
		})
	}
}
