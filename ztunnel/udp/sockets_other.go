//go:build !linux

package udp

import (
	"context"
	"net"
	"net/netip"
)

var _ sockets = netnsSockets{}

func (netnsSockets) Listen(context.Context) (packetListener, error) { return nil, ErrNotSupported }

func (netnsSockets) DialFrom(context.Context, netip.AddrPort, netip.AddrPort) (net.Conn, error) {
	return nil, ErrNotSupported
}

func (netnsSockets) Dial(context.Context, netip.AddrPort) (net.Conn, error) {
	return nil, ErrNotSupported
}

func (netnsSockets) Raw() (rawWriter, error) { return nil, ErrNotSupported }
