package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Capacity runs a closed loop (each connection sends its next request as
// soon as the previous one answers) over conns keep-alive connections and
// returns the completed requests per second after warmup. It finds the
// highest rate a path can carry; open-loop runs then offer fractions of it.
func Capacity(ctx context.Context, addr, path string, conns int, warmup, dur time.Duration) (float64, error) {
	if conns <= 0 || dur <= 0 {
		return 0, fmt.Errorf("capacity: connections %d, duration %s", conns, dur)
	}
	var count atomic.Int64
	var counting atomic.Bool
	var firstErr error
	var once sync.Once
	rctx, cancel := context.WithTimeout(ctx, warmup+dur)
	defer cancel()
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() { // owned by Capacity: ends with rctx
			defer wg.Done()
			hc := newHTTPConn(addr, hostOf(addr), path)
			defer hc.close()
			for rctx.Err() == nil {
				if err := hc.do(rctx); err != nil {
					if rctx.Err() == nil {
						once.Do(func() { firstErr = err })
					}
					continue
				}
				if counting.Load() {
					count.Add(1)
				}
			}
		}()
	}
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
	}
	counting.Store(true)
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("capacity: %w", err)
	}
	if count.Load() == 0 && firstErr != nil {
		return 0, fmt.Errorf("capacity: %w", firstErr)
	}
	return float64(count.Load()) / elapsed.Seconds(), nil
}
