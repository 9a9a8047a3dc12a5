package hbone

// Direct delivery. A Stream whose bytes are being copied to a TCP
// connection by WriteTo (io.Copy(tcpConn, stream), the proxy's splice)
// usually has its goroutine parked waiting for the next DATA frame, which
// another goroutine (the connection's read role) reads. Handing each
// payload over costs a wake-up of the parked goroutine, a scheduler trip
// and often a futex call, on every message. Instead, while WriteTo waits
// with nothing queued, the reader tries to write the payload to the TCP
// socket itself, without blocking: when the socket takes it all, nobody
// is woken. Whatever the socket does not take (a full send buffer) is
// queued as before and WriteTo, woken, writes it with blocking writes, so
// the reader never waits on one stream's destination and bytes stay in
// order (the reader only writes while the queue is empty and WriteTo is
// not writing).

// sinkWriter writes without blocking: it returns how much of p the
// destination took at once (0 when it would block) and a write error.
// It is only called with the stream's mu held.
type sinkWriter interface {
	tryWrite(p []byte) (int, error)
}

// deliverDirect writes a DATA payload (b, or small) to the armed sink. It
// returns what is left to queue (b with the head offset past the written
// part, or the unwritten tail of small), how many bytes went out, the
// padding to credit (grown by what a failed write dropped), and whether
// WriteTo must be woken. Called with s.mu held and the queue empty.
func (s *Stream) deliverDirect(b *[]byte, small []byte, padding int64, end bool) (*[]byte, []byte, int, int64, bool) {
	p := small
	if b != nil {
		p = *b
	}
	if len(p) == 0 {
		return b, small, 0, padding, true
	}
	n, err := s.sink.tryWrite(p)
	s.sunk += int64(n)
	switch {
	case err != nil:
		s.sinkErr = err
		if b != nil {
			putBuf(b)
		}
		return nil, nil, n, padding + int64(len(p)-n), true
	case n == len(p):
		if b != nil {
			putBuf(b)
		}
		return nil, nil, n, padding, end
	case b != nil:
		s.roff = n // b becomes the head of the empty queue
		return b, nil, n, padding, true
	default:
		return nil, small[n:], n, padding, true
	}
}
