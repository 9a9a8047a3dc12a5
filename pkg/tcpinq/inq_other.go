//go:build unix && !linux

package tcpinq

import (
	"syscall"

	"github.com/weftmesh/weft/pkg/rawsock"
)

// Reader reads one socket with read(2): the hint is Linux's.
type Reader struct{}

// Read reads into p from the non-blocking socket fd without the runtime's
// system-call bookkeeping (it never blocks). It returns EAGAIN when
// nothing is queued.
func (r *Reader) Read(fd int, p []byte) (int, syscall.Errno) { return rawsock.Read(fd, p) }

// Forget is a no-op: this Reader keeps nothing between reads.
func (r *Reader) Forget() {}
