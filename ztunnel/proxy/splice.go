package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
)

type closeWriter interface{ CloseWrite() error }

// splice copies both ways between a (the client side) and b (the upstream)
// until both directions end, passing half-closes on, and returns the bytes
// sent a→b and received b→a. The first error other than a clean end is
// returned. Both conns are closed on return.
func splice(a, b net.Conn) (sent, recv int64, err error) {
	var wg sync.WaitGroup
	var errUp, errDown error
	wg.Add(1)
	go func() {
		defer wg.Done()
		recv, errDown = copyHalf(a, b)
	}()
	sent, errUp = copyHalf(b, a)
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
	return sent, recv, errors.Join(quiet(errUp), quiet(errDown))
}

// copyHalf copies src to dst, then half-closes dst; on a copy error it
// closes both so the other direction stops too.
func copyHalf(dst, src net.Conn) (int64, error) {
	var n int64
	var err error
	srcTCP, fromTCP := src.(*net.TCPConn)
	_, toTCP := dst.(*net.TCPConn)
	if fromTCP && !toTCP {
		// TCP to a tunnel: no buffer held while idle. (TCP to TCP keeps
		// io.Copy, which splices in the kernel.)
		n, err = copyFromTCP(dst, srcTCP)
	} else {
		n, err = io.Copy(dst, src)
	}
	if err != nil {
		_ = dst.Close()
		_ = src.Close()
		return n, err
	}
	if cw, ok := dst.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			_ = dst.Close()
		}
	} else {
		_ = dst.Close()
	}
	return n, nil
}

// quiet drops errors that only say the other direction closed first.
func quiet(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return nil
	}
	return err
}
