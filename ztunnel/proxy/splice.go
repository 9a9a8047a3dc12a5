package proxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"

	"github.com/weftmesh/weft/ztunnel/telemetry"
)

type closeWriter interface{ CloseWrite() error }

// streamSplicer is implemented by tunnels that copy what they receive to a
// TCP connection without a goroutine waiting on them (pkg/hbone's Stream).
type streamSplicer interface {
	SpliceTo(dst *net.TCPConn, done func(n int64, err error)) error
}

// copied is the outcome of one direction of a splice.
type copied struct {
	n   int64
	err error
}

// carried is a connection ready to be carried: its record, the client
// side (the pod's connection or the tunnel), the upstream, and for inbound
// connections their entry in the pod's re-checked set.
type carried struct {
	rec              *telemetry.Conn
	client, upstream net.Conn
	oc               *openConn
	remove           func()
}

// carry splices the connection until both directions end and records it.
// It and the splice functions below keep small frames: an idle
// connection's goroutine is parked under them, and a shallow stack is one
// the garbage collector can shrink.
func (k *carried) carry() {
	k.rec.Opened()
	sent, recv, err := splice(k.client, k.upstream)
	k.finish(sent, recv, err)
}

// finish records the end of the connection and forgets it.
func (k *carried) finish(sent, recv int64, err error) {
	k.rec.AddSent(sent)
	k.rec.AddReceived(recv)
	if k.oc != nil {
		err = errors.Join(k.oc.revoked(), err)
	}
	k.rec.Closed(err)
	if k.remove != nil {
		k.remove()
	}
}

// splice copies both ways between a (the client side) and b (the upstream)
// until both directions end, passing half-closes on, and returns the bytes
// sent a→b and received b→a. The first error other than a clean end is
// returned. Both conns are closed on return.
//
// When one side is an HBONE stream and the other a TCP connection, the
// stream→TCP direction runs without a goroutine of its own (the HBONE
// connection's reader writes to the TCP socket), so an idle connection
// costs one goroutine per ztunnel side instead of two.
func splice(a, b net.Conn) (sent, recv int64, err error) {
	// The async paths live in functions of their own with small frames: a
	// parked connection's goroutine then holds a stack the garbage
	// collector can shrink.
	if tcp, ok := a.(*net.TCPConn); ok {
		if st, ok := b.(streamSplicer); ok {
			if ch, ok := spliceAsync(st, tcp, a, b); ok {
				return spliceFrom(a, b, ch)
			}
		}
	}
	if tcp, ok := b.(*net.TCPConn); ok {
		if st, ok := a.(streamSplicer); ok {
			if ch, ok := spliceAsync(st, tcp, a, b); ok {
				return spliceTo(a, b, ch)
			}
		}
	}
	return spliceBoth(a, b)
}

// spliceFrom copies a→b on this goroutine while b→a runs as ch.
func spliceFrom(a, b net.Conn, ch <-chan copied) (sent, recv int64, err error) {
	n, err := copyHalf(b, a)
	return endAsync(a, b, ch, n, err, false)
}

// spliceTo copies b→a on this goroutine while a→b runs as ch.
func spliceTo(a, b net.Conn, ch <-chan copied) (sent, recv int64, err error) {
	n, err := copyHalf(a, b)
	return endAsync(a, b, ch, n, err, true)
}

// endAsync waits for the direction running as ch once this goroutine's
// direction (n bytes, err) has ended, closes both conns and returns the
// bytes sent a→b and received b→a with the errors that matter.
func endAsync(a, b net.Conn, ch <-chan copied, n int64, err error, asyncSent bool) (sent, recv int64, _ error) {
	r := <-ch
	closeBoth(a, b, r.err == nil && err == nil)
	if asyncSent {
		return r.n, n, errors.Join(quiet(r.err), quiet(err))
	}
	return n, r.n, errors.Join(quiet(err), quiet(r.err))
}

// spliceBoth copies each direction on a goroutine of its own.
func spliceBoth(a, b net.Conn) (sent, recv int64, err error) {
	var wg sync.WaitGroup
	var errUp, errDown error
	wg.Add(1)
	go func() {
		defer wg.Done()
		recv, errDown = copyHalf(a, b)
	}()
	sent, errUp = copyHalf(b, a)
	wg.Wait()
	closeBoth(a, b, errUp == nil && errDown == nil)
	return sent, recv, errors.Join(quiet(errUp), quiet(errDown))
}

// spliceAsync starts copying src to dst with SpliceTo; a failed copy
// closes both a and b so that the other direction stops too, as copyHalf
// does. It reports false if src cannot be spliced.
func spliceAsync(src streamSplicer, dst *net.TCPConn, a, b net.Conn) (<-chan copied, bool) {
	ch := make(chan copied, 1)
	err := src.SpliceTo(dst, func(n int64, err error) {
		if err != nil {
			_ = a.Close()
			_ = b.Close()
		}
		ch <- copied{n, err}
	})
	return ch, err == nil
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
