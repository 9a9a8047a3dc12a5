//go:build linux

package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// copyBufSize is the size of the pooled buffers used while data flows.
const copyBufSize = 64 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// copyFromTCP copies src to dst holding no buffer while src is idle: it
// waits for readability with a one-byte MSG_PEEK, then borrows a pooled
// buffer for as long as data keeps coming. An idle connection thus costs
// its goroutine only, not a 32 KiB io.Copy buffer.
func copyFromTCP(dst io.Writer, src *net.TCPConn) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return io.Copy(dst, src)
	}
	var total int64
	var one [1]byte
	for {
		// Wait until data (or EOF, or an error) is pending.
		var perr error
		err := rc.Read(func(fd uintptr) bool {
			_, _, e := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if errors.Is(e, syscall.EAGAIN) {
				return false
			}
			if errors.Is(e, syscall.EINTR) {
				return false
			}
			perr = e
			return true
		})
		if err != nil {
			return total, err
		}
		_ = perr // the Read below reports it
		bp := copyBufs.Get().(*[]byte)
		n, rerr, werr := drain(dst, src, *bp)
		copyBufs.Put(bp)
		total += n
		if werr != nil {
			return total, werr
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// drain reads and writes while reads fill the buffer (more is likely
// pending); it returns after a short read.
func drain(dst io.Writer, src io.Reader, buf []byte) (total int64, rerr, werr error) {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			w, e := dst.Write(buf[:n])
			total += int64(w)
			if e != nil {
				return total, nil, e
			}
			if w != n {
				return total, nil, io.ErrShortWrite
			}
		}
		if err != nil {
			return total, err, nil
		}
		if n < len(buf) {
			return total, nil, nil
		}
	}
}
