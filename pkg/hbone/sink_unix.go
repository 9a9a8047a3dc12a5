//go:build unix

package hbone

import (
	"io"
	"net"
	"syscall"

	"github.com/weftmesh/weft/pkg/rawsock"
)

// sinkFor returns a non-blocking writer for w when it is a TCP
// connection, else nil (no direct delivery).
func sinkFor(w io.Writer) sinkWriter {
	tc, ok := w.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &rawSink{rc: rc}
	s.fn = s.write
	return s
}

// rawSink makes one write(2) attempt on a socket through its RawConn; the
// closure is built once so an attempt does not allocate.
type rawSink struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

func (s *rawSink) write(fd uintptr) bool {
	for {
		n, e := rawsock.Write(int(fd), s.p)
		if e == syscall.EINTR {
			continue
		}
		s.n, s.err = n, nil
		if e != 0 {
			s.err = e
		}
		return true // done either way: never wait for writability
	}
}

func (s *rawSink) tryWrite(p []byte) (int, error) {
	s.p = p
	err := s.rc.Write(s.fn)
	n, werr := s.n, s.err
	s.p, s.n, s.err = nil, 0, nil
	if err != nil {
		return 0, err
	}
	if werr == syscall.EAGAIN {
		return 0, nil
	}
	if werr != nil {
		return 0, werr
	}
	return max(n, 0), nil
}
