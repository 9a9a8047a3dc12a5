//go:build unix

package upstream

import (
	"errors"
	"net"
	"syscall"
)

// probeSocket reads nc's socket once without blocking, if nc is a socket
// (or wraps one): alive if nothing is there to read. ok is false when nc
// is no socket. A byte it reads is lost: a connection found not alive is
// closed.
func probeSocket(nc net.Conn) (alive, ok bool) {
	for {
		w, wraps := nc.(interface{ NetConn() net.Conn })
		if !wraps {
			break
		}
		nc = w.NetConn()
	}
	sc, isSocket := nc.(syscall.Conn)
	if !isSocket {
		return false, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var one [1]byte
	var n int
	var rerr error
	if err := raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), one[:])
		return true // one attempt: never wait for the socket
	}); err != nil {
		return false, true
	}
	return n < 0 && errors.Is(rerr, syscall.EAGAIN), true
}
