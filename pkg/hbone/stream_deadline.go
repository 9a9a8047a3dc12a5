package hbone

import (
	"net"
	"time"
)

// LocalAddr returns the local address of the underlying connection.
func (s *Stream) LocalAddr() net.Addr { return s.local }

// RemoteAddr returns the remote address of the underlying connection.
func (s *Stream) RemoteAddr() net.Addr { return s.remote }

// SetDeadline sets both the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error {
	_ = s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline makes pending and future Reads fail with an error
// wrapping os.ErrDeadlineExceeded after t; the zero time means none.
//
// A stream keeps one timer for its read deadline, made on first use and
// moved after that: servers that set a deadline per request (net/http
// does) cost no allocation per call.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdeadline = t
	switch {
	case t.IsZero():
		if s.rtimer != nil {
			s.rtimer.Stop()
		}
	case s.rtimer == nil:
		s.rtimer = time.AfterFunc(time.Until(t), s.readDeadlinePassed)
	default:
		s.rtimer.Reset(time.Until(t))
	}
	return nil
}

// readDeadlinePassed runs on the read timer: it wakes waiting readers and
// interrupts the socket wait of a reader holding the read role. A timer
// that fires for a deadline since moved or cleared does nothing.
func (s *Stream) readDeadlinePassed() {
	s.mu.Lock()
	d := s.rdeadline
	if d.IsZero() || time.Now().Before(d) {
		s.mu.Unlock()
		return
	}
	s.rcond.Broadcast()
	s.mu.Unlock()
	s.c.kickIfHolding(s)
}

// SetWriteDeadline makes Writes waiting for flow-control window fail with
// an error wrapping os.ErrDeadlineExceeded after t; the zero time means
// none. Like the read deadline it reuses one timer per stream.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.wdeadline = t
	switch {
	case t.IsZero():
		if s.wtimer != nil {
			s.wtimer.Stop()
		}
	case s.wtimer == nil:
		s.wtimer = time.AfterFunc(time.Until(t), s.writeDeadlinePassed)
	default:
		s.wtimer.Reset(time.Until(t))
	}
	return nil
}

// writeDeadlinePassed runs on the write timer: it wakes writers waiting
// for window so they see the deadline.
func (s *Stream) writeDeadlinePassed() {
	s.c.mu.Lock()
	s.c.sendCond.Broadcast()
	s.c.mu.Unlock()
}
