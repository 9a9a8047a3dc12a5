package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ThroughputResult is a bulk transfer's rate.
type ThroughputResult struct {
	Conns int `json:"conns"`
	// MbitPerS is the application bytes received per second in the window,
	// in megabits (10^6 bits).
	MbitPerS float64 `json:"mbit_per_s"`
	Bytes    int64   `json:"bytes"`
}

// Throughput opens conns connections to a byte source (Serve's Source
// listener), reads as fast as it can, and counts what arrives after
// warmup for dur. Reading, not writing, is counted so that bytes sitting
// in socket buffers never inflate the figure.
func Throughput(ctx context.Context, addr string, conns int, warmup, dur time.Duration) (ThroughputResult, error) {
	if conns <= 0 || dur <= 0 {
		return ThroughputResult{}, fmt.Errorf("throughput: connections %d, duration %s", conns, dur)
	}
	var counted atomic.Int64
	var counting atomic.Bool
	rctx, cancel := context.WithTimeout(ctx, warmup+dur)
	defer cancel()
	cs := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range cs {
			_ = c.Close()
		}
	}()
	for range conns {
		var d net.Dialer
		c, err := d.DialContext(rctx, "tcp", addr)
		if err != nil {
			return ThroughputResult{}, fmt.Errorf("throughput: dial %s: %w", addr, err)
		}
		cs = append(cs, c)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { // owned by Throughput: ends when c is closed
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for {
				n, err := c.Read(buf)
				if counting.Load() {
					counted.Add(int64(n))
				}
				if err != nil {
					return
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
	<-rctx.Done()
	counting.Store(false)
	elapsed := time.Since(start)
	for _, c := range cs {
		_ = c.Close()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return ThroughputResult{}, fmt.Errorf("throughput: %w", err)
	}
	b := counted.Load()
	if b == 0 {
		return ThroughputResult{}, fmt.Errorf("throughput: no bytes from %s", addr)
	}
	return ThroughputResult{Conns: conns, Bytes: b, MbitPerS: float64(b) * 8 / 1e6 / elapsed.Seconds()}, nil
}

// source writes zeros to c until the peer goes away.
func source(c net.Conn) {
	buf := make([]byte, 256<<10)
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// sink reads c until EOF and discards it.
func sink(c net.Conn) { _, _ = io.Copy(io.Discard, c) }
