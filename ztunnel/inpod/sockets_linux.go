//go:build linux

package inpod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/pkg/netns"
)

// netnsSockets creates sockets in a pod's namespace through pkg/netns, the
// one helper that enters a namespace.
// IPv4 dials take a pre-made socket from a per-pod pool; IPv6 dials and
// dials that find the pool empty enter the netns for the whole dial.
type netnsSockets struct {
	ns   *netns.NetNS
	pool *socketPool
}

var _ socketFactory = netnsSockets{}

func newNetnsSockets(ns *netns.NetNS) netnsSockets {
	return netnsSockets{ns: ns, pool: &socketPool{ns: ns}}
}

func (s netnsSockets) Close() {
	if s.pool != nil {
		s.pool.close()
	}
}

func (s netnsSockets) Listen(ctx context.Context, addr netip.AddrPort) (net.Listener, error) {
	lc := &net.ListenConfig{Control: control(true, false)}
	if addr.Addr() == netip.IPv6Unspecified() {
		// "tcp" on [::] is one dual-stack socket (IPV6_V6ONLY off): IPv6
		// and, v4-mapped, IPv4.
		ln, err := s.ns.Listen(ctx, lc, "tcp", addr.String())
		if err == nil || !noIPv6(err) {
			return ln, err
		}
		addr = netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())
	}
	return s.ns.Listen(ctx, lc, network(addr.Addr()), addr.String())
}

func (s netnsSockets) ListenPacket(ctx context.Context, addr netip.AddrPort) (net.PacketConn, error) {
	// A fixed port (the QUIC listener) is SO_REUSEPORT so that a
	// replacement ztunnel can bind beside a draining one, as for TCP.
	lc := &net.ListenConfig{Control: control(addr.Port() != 0, false)}
	if addr.Addr() == netip.IPv6Unspecified() {
		pc, err := s.ns.ListenPacket(ctx, lc, "udp", addr.String())
		if err == nil || !noIPv6(err) {
			return pc, err
		}
		addr = netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())
	}
	nw := "udp6"
	if addr.Addr().Unmap().Is4() {
		nw = "udp4"
	}
	return s.ns.ListenPacket(ctx, lc, nw, addr.String())
}

// noIPv6 reports errors that say the netns (or the kernel) has no IPv6.
func noIPv6(err error) bool {
	return errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.EPROTONOSUPPORT)
}

func (s netnsSockets) Dial(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	if s.pool != nil && dst.Addr().Unmap().Is4() && (!src.IsValid() || src.Unmap().Is4()) {
		if fd := s.pool.take(); fd >= 0 {
			return connectFD(ctx, fd, src, dst)
		}
	}
	d := &net.Dialer{Control: control(false, src.IsValid())}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return s.ns.Dial(ctx, d, network(dst.Addr()), dst.String())
}

func (s netnsSockets) MigrateRequests() error {
	return s.ns.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/tcp_migrate_req", []byte("1"), 0o644)
	})
}

func network(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "tcp4"
	}
	return "tcp6"
}

// control sets SO_MARK on every socket, SO_REUSEPORT on listeners, and
// clientSource's options on sockets bound to a client's address.
func control(reusePort, transparent bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, Mark); serr != nil {
				serr = fmt.Errorf("set SO_MARK: %w", serr)
				return
			}
			if reusePort {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
					serr = fmt.Errorf("set SO_REUSEPORT: %w", serr)
					return
				}
			}
			if transparent {
				serr = clientSource(int(fd), network == "tcp6")
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// clientSource readies fd, before it is bound to a client's address with
// port 0 and connected, for that foreign source: IP_TRANSPARENT (IPv6's
// for v6), and the port taken at connect, as a plain connect does, not at
// bind (IP_BIND_ADDRESS_NO_PORT). A port taken at bind is reserved on that
// address whatever the destination, and stays so through TIME_WAIT, which
// an inbound connection enters here whenever its client closes first:
// every client's connections to every app of the pod then share one port
// range, and a client opening and closing connections fast exhausts it.
// Taken at connect, a port need only be unique per destination. A kernel
// without that option (before 4.2) keeps taking the port at bind.
func clientSource(fd int, v6 bool) error {
	var err error
	if v6 {
		err = unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
	} else {
		err = unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TRANSPARENT, 1)
	}
	if err != nil {
		return fmt.Errorf("set IP_TRANSPARENT: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	return nil
}

// SocketMark returns the SO_MARK of a connection or listener, for tests and
// diagnostics.
func SocketMark(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var mark int
	var serr error
	if err := rc.Control(func(fd uintptr) { mark, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) }); err != nil {
		return 0, err
	}
	return mark, serr
}
