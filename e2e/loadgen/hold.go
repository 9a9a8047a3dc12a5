package loadgen

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// HoldResult says how many connections Hold opened.
type HoldResult struct {
	Open     int    `json:"open"`
	Errors   int    `json:"errors"`
	FirstErr string `json:"first_error,omitempty"`
}

// Hold opens n idle TCP connections to addr, dialling at most parallel at a
// time, calls ready with the outcome, and keeps them open until ctx ends.
// It closes them all before returning.
func Hold(ctx context.Context, addr string, n, parallel int, ready func(HoldResult)) error {
	if n <= 0 {
		return fmt.Errorf("hold: %d connections", n)
	}
	parallel = max(1, parallel)
	conns := make([]net.Conn, n)
	var errs atomic.Int64
	var firstErr error
	var once sync.Once
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() { // owned by Hold: ends after one dial
			defer wg.Done()
			defer func() { <-sem }()
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				errs.Add(1)
				once.Do(func() { firstErr = err })
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	res := HoldResult{Open: n - int(errs.Load()), Errors: int(errs.Load())}
	if firstErr != nil {
		res.FirstErr = firstErr.Error()
	}
	ready(res)
	<-ctx.Done()
	return nil
}
