package tunnel

import (
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// awaitDatagram blocks until pc has a datagram (or a socket error) to
// read, and reports true; or until ctx ends, and reports false. It reads
// nothing: what woke it stays queued for the QUIC server started next. The
// wait holds no buffer and no goroutine besides the caller's (the runtime
// poller watches the socket), so a pod that never receives HBONE over
// QUIC costs its socket only, not a quic-go server (its receive queue and
// about six goroutines).
func awaitDatagram(ctx context.Context, pc net.PacketConn) bool {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return ctx.Err() == nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return ctx.Err() == nil
	}
	// ctx ending wakes the wait through a read deadline in the past.
	stop := context.AfterFunc(ctx, func() { _ = pc.SetReadDeadline(time.Unix(1, 0)) })
	var ready bool
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		for {
			_, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			switch rerr {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // nothing yet: wait for the poller
			}
			ready = true // a datagram, or an error the server's read reports
			return true
		}
	})
	if !stop() {
		// ctx ended (the deadline is set, or being set): the socket is
		// not served.
		return false
	}
	return err == nil && ready
}
