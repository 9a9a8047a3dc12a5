//go:build linux

package proxy

import (
	"io"
	"net"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// copyBufSize is the size of the pooled buffers used while data flows.
const copyBufSize = 64 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyFromTCP copies src to dst holding no buffer while src is idle: each
// read borrows a pooled buffer inside the runtime poller's readiness
// callback, gives it back when the socket has nothing to read, and keeps it
// only until the bytes are written. An idle connection thus costs its
// goroutine only, not io.Copy's 32 KiB, and a busy one reads up to 64 KiB
// at a time without an extra system call.
func copyFromTCP(dst io.Writer, src *net.TCPConn) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return io.Copy(dst, src)
	}
	var total int64
	for {
		var bp *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			bp = copyBufs.Get().(*[]byte)
			for {
				n, rerr = rawRead(int(fd), *bp)
				if rerr != unix.EINTR { // a bare Errno: compared, not unwrapped
					break
				}
			}
			if rerr == unix.EAGAIN {
				copyBufs.Put(bp)
				bp = nil
				return false
			}
			return true
		})
		if err != nil {
			if bp != nil {
				copyBufs.Put(bp)
			}
			return total, err
		}
		if rerr != nil {
			copyBufs.Put(bp)
			return total, rerr
		}
		if n <= 0 {
			copyBufs.Put(bp)
			return total, nil // EOF
		}
		w, werr := dst.Write((*bp)[:n])
		copyBufs.Put(bp)
		total += int64(w)
		if werr != nil {
			return total, werr
		}
		if w != n {
			return total, io.ErrShortWrite
		}
	}
}

// rawRead is read(2) on a non-blocking socket without the runtime's
// system-call bookkeeping: the call never blocks (the poller waits for
// readiness), and skipping entersyscall keeps the first read after an idle
// spell from waking the runtime's sysmon thread (see pkg/hbone's
// rawio_unix.go, which does the same for the tunnel side).
func rawRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
