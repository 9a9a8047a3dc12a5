//go:build linux

package udp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/ztunnel/inpod"
)

var _ sockets = netnsSockets{}

// control sets SO_MARK and, as asked, IP_TRANSPARENT, SO_REUSEADDR,
// SO_REUSEPORT and IP_RECVORIGDSTADDR before bind.
func control(transparent, reuseAddr, reusePort, origDst bool) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		opts := [][4]int{{unix.SOL_SOCKET, unix.SO_MARK, inpod.Mark, 1}}
		if transparent {
			opts = append(opts, [4]int{unix.SOL_IP, unix.IP_TRANSPARENT, 1, 1})
		}
		if reuseAddr {
			opts = append(opts, [4]int{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, 1})
		}
		if reusePort {
			opts = append(opts, [4]int{unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, 1})
		}
		if origDst {
			opts = append(opts, [4]int{unix.SOL_IP, unix.IP_RECVORIGDSTADDR, 1, 1})
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			for _, o := range opts {
				if serr = unix.SetsockoptInt(int(fd), o[0], o[1], o[2]); serr != nil {
					serr = fmt.Errorf("setsockopt %d/%d: %w", o[0], o[1], serr)
					return
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

func (s netnsSockets) Listen(ctx context.Context) (packetListener, error) {
	lc := &net.ListenConfig{Control: control(true, false, true, true)}
	pc, err := s.ns.ListenPacket(ctx, lc, "udp4", listenAddr.String())
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	rc, err := c.SyscallConn()
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return origDstConn{c: c, rc: rc}, nil
}

func (s netnsSockets) DialFrom(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	d := &net.Dialer{Control: control(true, true, false, false), LocalAddr: net.UDPAddrFromAddrPort(local)}
	return s.ns.Dial(ctx, d, "udp4", remote.String())
}

func (s netnsSockets) Dial(ctx context.Context, remote netip.AddrPort) (net.Conn, error) {
	d := &net.Dialer{Control: control(false, false, false, false)}
	return s.ns.Dial(ctx, d, "udp4", remote.String())
}

// origDstConn reads IP_ORIGDSTADDR with every datagram.
type origDstConn struct {
	c  *net.UDPConn
	rc syscall.RawConn
}

func (o origDstConn) Close() error { return o.c.Close() }

// ReadFrom borrows a buffer inside the runtime poller's readiness callback
// and gives it back when the socket has nothing to read, as ztunnel/proxy's
// copyFromTCP does: a pod whose applications send no UDP holds no 64 KiB
// buffer for its listener.
func (o origDstConn) ReadFrom(bufs *sync.Pool) (*[]byte, int, netip.AddrPort, netip.AddrPort, error) {
	var (
		bp      *[]byte
		n, oobn int
		from    unix.Sockaddr
		rerr    error
		oob     [128]byte
		none    netip.AddrPort
	)
	err := o.rc.Read(func(fd uintptr) bool {
		bp = bufs.Get().(*[]byte)
		for {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), *bp, oob[:], unix.MSG_DONTWAIT)
			if rerr != unix.EINTR { // a bare Errno: compared, not unwrapped
				break
			}
		}
		if rerr == unix.EAGAIN {
			bufs.Put(bp)
			bp = nil
			return false
		}
		return true
	})
	if err == nil && rerr != nil {
		err = fmt.Errorf("recvmsg: %w", rerr)
	}
	if err != nil {
		if bp != nil {
			bufs.Put(bp)
		}
		return nil, 0, none, none, err
	}
	var src netip.AddrPort
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		src = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		src = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	dst, err := parseOrigDst(oob[:oobn])
	if err != nil {
		bufs.Put(bp)
		return nil, 0, none, none, err
	}
	return bp, n, src, dst, nil
}

// parseOrigDst finds IP_ORIGDSTADDR (a sockaddr_in) in control messages.
func parseOrigDst(oob []byte) (netip.AddrPort, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("parse control messages: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_ORIGDSTADDR && len(m.Data) >= 8 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(m.Data[4:8])), binary.BigEndian.Uint16(m.Data[2:4])), nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("datagram without its original destination")
}

func (s netnsSockets) Raw() (rawWriter, error) {
	var fd int
	err := s.ns.Do(func() error {
		var err error
		// IPPROTO_RAW: send only, IP_HDRINCL implied.
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		// Deliberately unmarked: a reply marked 0x539 would set connmark
		// 0x111 on the application's flow in PREROUTING, and its next
		// datagrams would then bypass capture. Replies leave through lo,
		// which the capture rules skip anyway.
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &rawSocket{fd: fd}, nil
}

// rawSocket is a send-only IPv4 raw socket.
type rawSocket struct {
	mu     sync.RWMutex
	fd     int
	closed bool
}

func (r *rawSocket) WriteFromTo(src, dst netip.AddrPort, payload []byte) error {
	pkt, err := udpPacket(src, dst, payload)
	if err != nil {
		return err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return net.ErrClosed
	}
	return unix.Sendto(r.fd, pkt, 0, &unix.SockaddrInet4{Addr: dst.Addr().As4()})
}

func (r *rawSocket) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return unix.Close(r.fd)
}
