//go:build linux

package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// soOriginalDst is SO_ORIGINAL_DST (and IP6T_SO_ORIGINAL_DST), the
// netfilter socket option that returns a redirected connection's original
// destination.
const soOriginalDst = 80

// originalDst returns the destination the client connected to before the
// in-pod REDIRECT rule sent it to ztunnel.
func originalDst(c net.Conn) (netip.AddrPort, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return netip.AddrPort{}, errors.New("original destination: not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	local, _ := c.LocalAddr().(*net.TCPAddr)
	var out netip.AddrPort
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		if local != nil && local.IP.To4() == nil {
			var mtu *unix.IPv6MTUInfo
			mtu, serr = unix.GetsockoptIPv6MTUInfo(int(fd), unix.SOL_IPV6, soOriginalDst)
			if serr == nil {
				// Port is stored in network byte order.
				port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&mtu.Addr.Port))[:])
				out = netip.AddrPortFrom(netip.AddrFrom16(mtu.Addr.Addr), port)
			}
			return
		}
		var mreq *unix.IPv6Mreq
		mreq, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, soOriginalDst)
		if serr == nil {
			b := mreq.Multiaddr
			out = netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[4], b[5], b[6], b[7]}), binary.BigEndian.Uint16(b[2:4]))
		}
	})
	if cerr != nil {
		return netip.AddrPort{}, cerr
	}
	if serr != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", serr)
	}
	return out, nil
}
