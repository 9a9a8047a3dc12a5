//go:build linux

package tcpinq

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/pkg/rawsock"
)

// The control buffer holds one TCP_CM_INQ message: a header and an int.
const ctlLen = unix.SizeofCmsghdr + 8

const (
	stateNew uint8 = iota
	stateOn        // TCP_INQ is set: reads are recvmsg with the hint
	stateOff       // refused: reads are read(2)
)

// Reader reads one socket. It is not safe for concurrent use: the caller
// serialises reads, as the runtime's read lock does inside RawConn.Read.
// The zero value is ready; the first Read turns TCP_INQ on.
type Reader struct {
	state   uint8
	drained bool // the last read left the queue empty
	msg     unix.Msghdr
	iov     unix.Iovec
	ctl     [ctlLen]byte
}

// Read reads into p from the non-blocking socket fd without the runtime's
// system-call bookkeeping (it never blocks). It returns EAGAIN when nothing
// is queued, and, with no system call, after a read that left the queue
// empty: the caller is then expected to wait for readiness.
func (r *Reader) Read(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	if r.drained {
		r.drained = false
		return 0, syscall.EAGAIN
	}
	if r.state == stateNew {
		r.state = stateOff
		if unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_INQ, 1) == nil {
			r.state = stateOn
		}
	}
	if r.state != stateOn {
		return rawsock.Read(fd, p)
	}
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg.Iov = &r.iov
	r.msg.Iovlen = 1
	r.msg.Control = &r.ctl[0]
	r.msg.SetControllen(len(r.ctl))
	n, _, e := syscall.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&r.msg)), 0)
	r.iov.Base = nil // do not keep the caller's buffer alive
	if e != 0 {
		return 0, e
	}
	if n > 0 {
		r.drained = queued(r.ctl[:r.msg.Controllen]) == 0
	}
	return int(n), 0
}

// Forget drops what r knows of the socket's queue, so that the next Read
// asks the kernel. Call it before r serves a new RawConn.Read: the runtime
// forgets the socket's readiness when that call begins.
func (r *Reader) Forget() { r.drained = false }

// queued returns the TCP_CM_INQ count in ctl, or -1 when there is none.
func queued(ctl []byte) int {
	if len(ctl) < unix.SizeofCmsghdr+4 {
		return -1
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	if h.Level != unix.SOL_TCP || h.Type != unix.TCP_CM_INQ || int(h.Len) < unix.SizeofCmsghdr+4 {
		return -1
	}
	return int(*(*int32)(unsafe.Pointer(&ctl[unix.SizeofCmsghdr])))
}
