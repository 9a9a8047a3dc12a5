package proxy

import (
	"net"
	"testing"
)

// BenchmarkLinger measures what linger.go adds to a connection (SO_LINGER
// set at accept and cleared before a clean close: two system calls)
// beside the baseline of opening and closing one loopback TCP connection
// (dial, accept, both closes), and reports the ratio:
//
//	go test -run='^$' -bench=Linger ./ztunnel/proxy
func BenchmarkLinger(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	conn := func(linger bool) {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s := <-accepted
		if linger {
			abortOnClose(s)
			closeGracefully(s)
		}
		_ = s.Close()
		_ = c.Close()
	}
	var base, with float64
	for _, mode := range []struct {
		name   string
		linger bool
		out    *float64
	}{{"connection", false, &base}, {"connection+linger", true, &with}} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				conn(mode.linger)
			}
			*mode.out = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	// The cost alone, on one socket, without the connection.
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	defer func() { _ = c.Close(); _ = s.Close() }()
	b.Run("linger-only", func(b *testing.B) {
		for b.Loop() {
			abortOnClose(s)
			closeGracefully(s)
		}
		if base > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/base, "of-a-connection")
		}
	})
	if base > 0 {
		b.Logf("loopback connection %.1f µs; with linger set and cleared %.1f µs (%+.1f%%)", base/1e3, with/1e3, 100*(with-base)/base)
	}
}
