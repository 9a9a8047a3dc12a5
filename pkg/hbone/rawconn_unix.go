//go:build unix

package hbone

import (
	"io"
	"net"
	"os"
	"syscall"

	"github.com/weftmesh/weft/pkg/rawsock"
)

// rawIO reads and writes a TCP socket through its RawConn with rawsock.Read
// and rawsock.Write: the runtime poller still parks the caller while the socket
// is not ready, and deadlines still apply. Reads are serialised by the
// caller (tls.Conn's input lock), writes by corkConn.mu; the closures are
// built once so an I/O does not allocate.
type rawIO struct {
	nc      net.Conn
	rc      syscall.RawConn
	readFn  func(fd uintptr) bool
	rp      []byte
	rn      int
	rerr    syscall.Errno
	writeFn func(fd uintptr) bool
	wp      []byte
	wn      int
	werr    syscall.Errno
}

// newRawIO returns a rawIO for nc, or nil when nc is not a socket that
// offers one.
func newRawIO(nc net.Conn) *rawIO {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{nc: nc, rc: rc}
	r.readFn = r.readOnce
	r.writeFn = r.writeAll
	return r
}

func (r *rawIO) readOnce(fd uintptr) bool {
	for {
		n, e := rawsock.Read(int(fd), r.rp)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.rn, r.rerr = n, e
		return true
	}
}

func (r *rawIO) read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.rp = p
	err := r.rc.Read(r.readFn)
	n, e := r.rn, r.rerr
	r.rp, r.rn, r.rerr = nil, 0, 0
	if err != nil {
		return 0, r.opError("read", err)
	}
	if e != 0 {
		return 0, r.opError("read", os.NewSyscallError("read", e))
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawIO) writeAll(fd uintptr) bool {
	for r.wn < len(r.wp) {
		n, e := rawsock.Write(int(fd), r.wp[r.wn:])
		switch e {
		case 0:
			r.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

func (r *rawIO) write(p []byte) (int, error) {
	r.wp, r.wn, r.werr = p, 0, 0
	err := r.rc.Write(r.writeFn)
	n, e := r.wn, r.werr
	r.wp, r.wn, r.werr = nil, 0, 0
	if err != nil {
		return n, r.opError("write", err)
	}
	if e != 0 {
		return n, r.opError("write", os.NewSyscallError("write", e))
	}
	return n, nil
}

// opError wraps err as the net package wraps socket errors, so callers
// (crypto/tls among them) see timeouts and resets as they would from
// net.TCPConn.
func (r *rawIO) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: r.nc.LocalAddr(), Addr: r.nc.RemoteAddr(), Err: err}
}
