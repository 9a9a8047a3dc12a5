package hbone

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowDial delays every connection attempt, as a TLS handshake does on a
// loaded node, and counts the attempts in flight.
type slowDial struct {
	delay          time.Duration
	inFlight, peak atomic.Int32
	dials          atomic.Int32
}

func (d *slowDial) dial(ctx context.Context, k Key) (net.Conn, error) {
	d.dials.Add(1)
	n := d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	for {
		p := d.peak.Load()
		if n <= p || d.peak.CompareAndSwap(p, n) {
			break
		}
	}
	t := time.NewTimer(d.delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return dialKey(ctx, k)
}

// TestBurstOfStreams opens a burst of streams at once for one key, more
// than one connection may carry, while each new connection takes a while
// to set up, and holds them all (as ztunnel does when thousands of
// clients connect at once). Every Dial must succeed within the connect
// timeout: the pool dials the connections the burst needs in parallel,
// not one after another (10 set-ups of 1 s in a row would take 10 s,
// beyond the 4 s given), and no connection carries more than its cap.
func TestBurstOfStreams(t *testing.T) {
	const (
		n        = 1000
		perConn  = 100
		timeout  = 4 * time.Second
		dialTime = time.Second
	)
	var handled atomic.Int64
	h := HandlerFunc(func(_ context.Context, r *Request) {
		handled.Add(1)
		s, err := r.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, s)
	})
	d := &slowDial{delay: dialTime}
	ts := newSetup(t, h, nil, func(c *PoolConfig) {
		c.MaxStreamsPerConn = perConn
		c.Dial = d.dial
	})
	var wg sync.WaitGroup
	var failed atomic.Int32
	var first atomic.Value
	streams := make(chan *Stream, n)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			s, err := ts.pool.Dial(ctx, ts.key, "10.0.0.1:80", nil)
			if err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, err.Error())
				return
			}
			streams <- s
		}()
	}
	wg.Wait()
	close(streams)
	t.Logf("%d dials in %s: %d connection attempts (at most %d at once), %d requests handled",
		n, time.Since(start).Round(time.Millisecond), d.dials.Load(), d.peak.Load(), handled.Load())
	defer func() {
		for s := range streams {
			_ = s.Close()
		}
	}()
	if k := failed.Load(); k > 0 {
		t.Errorf("%d of %d dials failed, first: %v", k, n, first.Load())
	}
	if got, want := int(d.dials.Load()), n/perConn; got != want {
		t.Errorf("%d connection attempts, want %d", got, want)
	}
	p := ts.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.entries[ts.key].conns {
		pc.c.mu.Lock()
		k := len(pc.c.streams)
		pc.c.mu.Unlock()
		if k > perConn || pc.active > perConn {
			t.Errorf("a connection carries %d streams (the pool counts %d), cap %d", k, pc.active, perConn)
		}
	}
}
