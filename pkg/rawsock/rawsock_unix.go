//go:build unix

// Package rawsock reads and writes non-blocking sockets with read(2) and
// write(2) made without the runtime's system-call bookkeeping
// (entersyscall and exitsyscall): such a call never blocks, so the P need
// not be handed off, and skipping the bookkeeping keeps the first I/O
// after an idle spell from waking the runtime's sysmon thread, which then
// polls every 20 µs until the process is idle again (a thread wake-up and
// several sleeps per request at a few thousand requests per second).
//
// Callers reach the descriptor through syscall.RawConn, whose Read and
// Write park the goroutine in the runtime poller on EAGAIN.
package rawsock

import (
	"syscall"
	"unsafe"
)

// Read reads into p from the non-blocking socket fd. It returns EAGAIN
// when nothing is queued.
func Read(fd int, p []byte) (int, syscall.Errno) { return call(syscall.SYS_READ, fd, p) }

// Write writes p to the non-blocking socket fd. It returns EAGAIN when
// the send buffer is full.
func Write(fd int, p []byte) (int, syscall.Errno) { return call(syscall.SYS_WRITE, fd, p) }

// call makes the read or write system call trap on fd with p.
func call(trap uintptr, fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
