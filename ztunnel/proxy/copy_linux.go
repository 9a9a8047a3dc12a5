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

// tryWriter is a destination that takes bytes without waiting on its peer
// when it can (pkg/hbone's Stream).
type tryWriter interface {
	TryWrite(p []byte) (bool, error)
}

// copyFromTCP copies src to dst holding no buffer while src is idle: each
// of the runtime poller's readiness callbacks borrows a pooled buffer,
// gives it back when the socket has nothing to read, and keeps it only
// until the bytes are written. An idle connection thus costs its
// goroutine only, not io.Copy's 32 KiB, and a busy one reads up to 64 KiB
// at a time without an extra system call.
//
// While dst takes bytes without waiting (TryWrite), the copy stays in one
// RawConn.Read: the runtime forgets a socket's readiness at the start of
// each RawConn.Read, and only while it keeps it may a read that emptied the
// socket skip the read that would find it empty (tcpinq) and wait for the
// poller at once. A write that would wait leaves the callback first and
// waits outside it, because a RawConn.Read holds the socket's read lock
// and src.Close waits for that lock: a peer that does not read must not
// hang whoever closes the connection (a drain, a revoked policy, the other
// direction's failure).
func copyFromTCP(dst io.Writer, src *net.TCPConn) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return io.Copy(dst, src)
	}
	tw, _ := dst.(tryWriter)
	var (
		total int64
		in    tcpinq.Reader
		held  *[]byte // read but not written: the write would wait
		heldN int
		cerr  error
	)
	read := func(fd uintptr) bool {
		// One buffer serves the whole callback: it goes back to the pool
		// when the socket has nothing more, or leaves with the bytes a
		// write must wait for.
		bp := copyBufs.Get().(*[]byte)
		for {
			n, e := in.Read(int(fd), *bp)
			if e == unix.EINTR {
				continue
			}
			if e != 0 || n == 0 {
				copyBufs.Put(bp)
				switch e {
				case unix.EAGAIN:
					return false
				case 0: // EOF
				default:
					cerr = e
				}
				return true
			}
			if tw == nil {
				held, heldN = bp, n
				return true
			}
			ok, werr := tw.TryWrite((*bp)[:n])
			switch {
			case werr != nil:
				copyBufs.Put(bp)
				cerr = werr
				return true
			case !ok:
				held, heldN = bp, n
				return true
			}
			total += int64(n)
		}
	}
	for {
		if err := rc.Read(read); err != nil {
			if held != nil {
				copyBufs.Put(held)
			}
			return total, err
		}
		if held == nil {
			return total, cerr
		}
		w, werr := dst.Write((*held)[:heldN])
		copyBufs.Put(held)
		held = nil
		total += int64(w)
		switch {
		case werr != nil:
			return total, werr
		case w != heldN:
			return total, io.ErrShortWrite
		}
		in.Forget()
	}
}
