//go:build !linux

package inpod

import (
	"context"
	"net"
	"net/netip"
	"syscall"

	"github.com/weftmesh/weft/pkg/netns"
)

type netnsSockets struct{ ns *netns.NetNS }

func newNetnsSockets(ns *netns.NetNS) netnsSockets { return netnsSockets{ns: ns} }

func (netnsSockets) Close() {}

var _ socketFactory = netnsSockets{}

func (netnsSockets) Listen(context.Context, netip.AddrPort) (net.Listener, error) {
	return nil, ErrNotSupported
}

func (netnsSockets) Dial(context.Context, netip.Addr, netip.AddrPort) (net.Conn, error) {
	return nil, ErrNotSupported
}

func (netnsSockets) ListenPacket(context.Context, netip.AddrPort) (net.PacketConn, error) {
	return nil, ErrNotSupported
}

// SocketMark is not supported on this system.
func SocketMark(syscall.Conn) (int, error) { return 0, ErrNotSupported }

func (netnsSockets) MigrateRequests() error { return ErrNotSupported }
