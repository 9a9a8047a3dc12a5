package hbone

import (
	"context"
	"io"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

const idleStreams = 10000

// idleOpener opens n idle tunnels (server side blocked reading) and
// returns a function closing them.
type idleOpener func(tb testing.TB, m *mesh, n int) (closeAll func())

func openIdleHBONE(tb testing.TB, m *mesh, n int) func() {
	srv := &Server{
		Handler: HandlerFunc(func(_ context.Context, r *Request) {
			s, err := r.Accept()
			if err == nil {
				_, _ = io.Copy(io.Discard, s)
			}
		}),
		TLSConfig:    m.serverTLS(tb, serverID),
		Limits:       Limits{MaxConcurrentStreams: uint32(n)},
		DrainTimeout: time.Second,
	}
	addr, _ := startServer(tb, srv)
	pool, err := NewPool(PoolConfig{TLSConfig: m.clientTLS(tb, clientID), MaxStreamsPerConn: n})
	if err != nil {
		tb.Fatal(err)
	}
	key := NewKey(clientID, []string{serverID}, addr, netip.Addr{})
	streams := make([]*Stream, n)
	parallel(n, func(i int) {
		s, err := pool.Dial(context.Background(), key, "10.0.0.1:80", nil)
		if err != nil {
			tb.Error(err)
			return
		}
		streams[i] = s
	})
	return func() {
		for _, s := range streams {
			if s != nil {
				_ = s.Close()
			}
		}
		_ = pool.Close()
	}
}

func openIdleStock(tb testing.TB, m *mesh, n int) func() {
	// One shared server and transport; each tunnel is a CONNECT whose
	// handler blocks reading its body.
	first := openStockH2Shared(tb, m)
	conns := make([]benchConn, n)
	parallel(n, func(i int) { conns[i] = first.dial(tb) })
	return func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}
}

func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				fn(i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

func inUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// BenchmarkIdleStreams reports the memory of 10,000 idle tunnels, client
// and server side together, per tunnel (run with -benchtime=1x).
func BenchmarkIdleStreams(b *testing.B) {
	m := newMesh()
	for _, p := range []struct {
		name string
		open idleOpener
		n    int
	}{
		// Stock HTTP/2 needs about half a megabyte per tunnel; it is
		// measured on 500 and scaled so the run stays within memory.
		{"h2stock", openIdleStock, idleStreams / 20},
		{"hbone", openIdleHBONE, idleStreams},
	} {
		b.Run(p.name, func(b *testing.B) {
			var perStream float64
			for range b.N {
				before := inUse()
				closeAll := p.open(b, m, p.n)
				after := inUse()
				perStream = float64(after-before) / float64(p.n)
				closeAll()
			}
			b.ReportMetric(perStream, "bytes/stream")
			b.ReportMetric(perStream*idleStreams/(1<<20), "MiB/10k-streams")
		})
	}
}
