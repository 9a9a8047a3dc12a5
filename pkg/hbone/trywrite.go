package hbone

import "fmt"

// TryWrite sends p as DATA frames if it can do so without waiting for the
// peer: the stream's and the connection's send windows have room for all
// of p, and the connection's write buffer is not full behind a flush.
// Otherwise it sends nothing and reports false with a nil error, and the
// caller calls Write, which waits. A p of 32 KiB or more is left to Write
// too (Write sends it from the caller's buffer; TryWrite copies).
//
// It is for callers that must not wait on the peer where they are: a copy
// that holds its source socket's read lock, which the socket's Close waits
// for, would otherwise hang whoever closes the socket while the peer's
// application does not read. Like any writer that flushes, TryWrite may
// still wait for the connection's own socket to take the bytes, which
// depends on the peer's HBONE reader, not on the peer's application.
func (s *Stream) TryWrite(p []byte) (bool, error) {
	if len(p) == 0 {
		return true, nil
	}
	if len(p) >= directMin || !s.wlock.TryLock() {
		return false, nil
	}
	defer s.wlock.Unlock()
	frame, ok, err := s.c.tryReserveSend(s, len(p))
	if !ok {
		return false, err
	}
	c := s.c
	c.wmu.Lock()
	if c.werr == nil && c.flushing && len(c.wbuf) >= wbufLimit {
		c.wmu.Unlock()
		c.unreserveSend(s, len(p))
		return false, nil
	}
	if c.werr != nil || s.wstate != wOpen {
		werr, state := c.werr, s.wstate
		c.wmu.Unlock()
		c.unreserveSend(nil, len(p))
		if werr != nil {
			return false, werr
		}
		return false, s.closedErr(state)
	}
	for len(p) > 0 {
		k := min(len(p), frame)
		c.wbuf = appendDataFrame(c.wbuf, s.id, false, p[:k])
		p = p[k:]
	}
	c.endWrite(true)
	return true, nil
}

// tryReserveSend takes n bytes of s's and the connection's send windows if
// both have them, without waiting, and returns the largest DATA frame s
// may send. It reports false, taking nothing, when either window is short,
// and the stream's or the connection's error when it cannot send at all.
func (c *conn) tryReserveSend(s *Stream, n int) (frame int, ok bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case s.werr != nil:
		return 0, false, s.werr
	case c.closed:
		return 0, false, fmt.Errorf("%w: %w", errConnClosed, c.err)
	case s.sendWindow < int64(n) || c.sendWindow < int64(n):
		return 0, false, nil
	}
	s.sendWindow -= int64(n)
	c.sendWindow -= int64(n)
	return min(int(c.peerMaxFrame), maxSendFrame), true, nil
}
