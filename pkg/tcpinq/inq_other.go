//go:build unix && !linux

package tcpinq

import (
	"syscall"
	"unsafe"
)

// Reader reads one socket with read(2): the hint is Linux's.
type Reader struct{}

// Read reads into p from the non-blocking socket fd without the runtime's
// system-call bookkeeping (it never blocks). It returns EAGAIN when
// nothing is queued.
func (r *Reader) Read(fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
