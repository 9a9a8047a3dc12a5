//go:build linux

package proxy

import (
	"io"
	"net"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/pkg/tcpinq"
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
//
// The whole copy is one RawConn.Read, writes included: the runtime forgets
// a socket's readiness at the start of each RawConn.Read, and only while it
// keeps it may a read that emptied the socket skip the read that would
// find it empty (tcpinq) and wait for the poller at once.
func copyFromTCP(dst io.Writer, src *net.TCPConn) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return io.Copy(dst, src)
	}
	var (
		total int64
		in    tcpinq.Reader
		cerr  error
	)
	err = rc.Read(func(fd uintptr) bool {
		for {
			bp := copyBufs.Get().(*[]byte)
			n, e := in.Read(int(fd), *bp)
			if e != 0 || n == 0 {
				copyBufs.Put(bp)
				switch e {
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false
				case 0: // EOF
				default:
					cerr = e
				}
				return true
			}
			w, werr := dst.Write((*bp)[:n])
			copyBufs.Put(bp)
			total += int64(w)
			switch {
			case werr != nil:
				cerr = werr
				return true
			case w != n:
				cerr = io.ErrShortWrite
				return true
			}
		}
	})
	if err != nil {
		return total, err
	}
	return total, cerr
}
