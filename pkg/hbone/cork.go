package hbone

import (
	"crypto/tls"
	"net"
	"sync"
)

// crypto/tls writes every record (at most 16 KiB of plaintext) to the
// socket with a write of its own, so one large tls.Conn.Write costs one
// system call per record, and a DATA frame's 9-byte header makes a 32 KiB
// payload three records. A corkConn sits under tls.Conn and, while the
// write path has it corked around one large tls.Conn.Write, collects the
// sealed records and hands them to the socket together.

// corkMax is how much a cork collects before it writes: enough for a few
// records per system call, little enough to keep the receiver busy.
const corkMax = 64 << 10

// corkMin is the smallest tls.Conn.Write worth corking: anything shorter
// is one record, one system call, anyway.
const corkMin = 16 << 10

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, corkMax+corkMin+1024); return &b }}

// corkConn is the TCP connection under a tls.Conn. Writes pass straight
// through unless corked.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte
	err    error
	raw    *rawIO // socket I/O without the runtime's syscall bookkeeping, if available
}

func newCorkConn(nc net.Conn) *corkConn { return &corkConn{Conn: nc, raw: newRawIO(nc)} }

// Read reads from the socket (through raw when available).
func (cc *corkConn) Read(p []byte) (int, error) {
	if cc.raw != nil {
		return cc.raw.read(p)
	}
	return cc.Conn.Read(p)
}

// write writes p to the socket (through raw when available).
func (cc *corkConn) write(p []byte) (int, error) {
	if cc.raw != nil {
		return cc.raw.write(p)
	}
	return cc.Conn.Write(p)
}

// corkOf returns the corkConn under nc, if nc is a tls.Conn over one.
func corkOf(nc net.Conn) *corkConn {
	if tc, ok := nc.(*tls.Conn); ok {
		if cc, ok := tc.NetConn().(*corkConn); ok {
			return cc
		}
	}
	return nil
}

// Write collects p while corked, writing out once corkMax is reached, and
// writes it through otherwise. A collected write reports success; a later
// failure is reported by the write that flushes, and by every write after.
func (cc *corkConn) Write(p []byte) (int, error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil {
		return 0, cc.err
	}
	if !cc.corked {
		return cc.write(p)
	}
	if cc.buf == nil {
		cc.buf = corkBufs.Get().(*[]byte)
	}
	*cc.buf = append(*cc.buf, p...)
	if len(*cc.buf) >= corkMax {
		if err := cc.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// cork starts collecting writes.
func (cc *corkConn) cork() {
	cc.mu.Lock()
	cc.corked = true
	cc.mu.Unlock()
}

// uncork writes what was collected and stops collecting.
func (cc *corkConn) uncork() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.corked = false
	err := cc.flushLocked()
	if cc.buf != nil {
		*cc.buf = (*cc.buf)[:0]
		corkBufs.Put(cc.buf)
		cc.buf = nil
	}
	return err
}

func (cc *corkConn) flushLocked() error {
	if cc.err != nil {
		return cc.err
	}
	if cc.buf == nil || len(*cc.buf) == 0 {
		return nil
	}
	_, err := cc.write(*cc.buf)
	*cc.buf = (*cc.buf)[:0]
	if err != nil {
		cc.err = err
	}
	return err
}
