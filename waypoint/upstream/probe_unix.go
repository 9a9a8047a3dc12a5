//go:build unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// socketProbe reads a connection's socket once without blocking. It is
// built once per connection, so that a probe (one per reuse) does not
// allocate.
type socketProbe struct {
	raw  syscall.RawConn
	read func(fd uintptr) bool
	one  [1]byte
	n    int
	err  error
}

// newSocketProbe returns a probe of nc's socket, if nc is a socket (or
// wraps one), and nil otherwise.
func newSocketProbe(nc net.Conn) *socketProbe {
	for {
		w, wraps := nc.(interface{ NetConn() net.Conn })
		if !wraps {
			break
		}
		nc = w.NetConn()
	}
	sc, isSocket := nc.(syscall.Conn)
	if !isSocket {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &socketProbe{raw: raw}
	p.read = func(fd uintptr) bool {
		p.n, p.err = syscall.Read(int(fd), p.one[:])
		return true // one attempt: never wait for the socket
	}
	return p
}

// alive reports whether nothing is there to read. A byte it reads is
// lost: a connection found not alive is closed.
func (p *socketProbe) alive() bool {
	if err := p.raw.Read(p.read); err != nil {
		return false
	}
	return p.n < 0 && errors.Is(p.err, syscall.EAGAIN)
}
