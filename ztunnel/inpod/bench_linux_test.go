//go:build linux

package inpod

import (
	"context"
	"net"
	"net/netip"
	"testing"
)

// BenchmarkPodDial measures a marked dial made inside a pod netns (what
// ztunnel does for every outbound passthrough and every inbound connection
// to an application) beside the same dial from ztunnel's own netns.
func BenchmarkPodDial(b *testing.B) {
	if !isRoot() {
		b.Skip("needs root")
	}
	ns, err := newBenchNS()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	ctx := context.Background()
	ln, err := ns.Listen(ctx, nil, "tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	dst := netip.MustParseAddrPort(ln.Addr().String())
	hostLn, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = hostLn.Close() }()
	go func() {
		for {
			c, err := hostLn.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	s := newNetnsSockets(ns)
	defer s.Close()
	b.Run("host-netns-baseline", func(b *testing.B) {
		for b.Loop() {
			c, err := net.Dial("tcp4", hostLn.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			_ = c.Close()
		}
	})
	slow := netnsSockets{ns: ns}
	b.Run("pod-netns-enter-per-dial", func(b *testing.B) {
		for b.Loop() {
			c, err := slow.Dial(ctx, netip.Addr{}, dst)
			if err != nil {
				b.Fatal(err)
			}
			_ = c.Close()
		}
	})
	b.Run("pod-netns-pooled-socket", func(b *testing.B) {
		for b.Loop() {
			c, err := s.Dial(ctx, netip.Addr{}, dst)
			if err != nil {
				b.Fatal(err)
			}
			_ = c.Close()
		}
	})
}
