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
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdeadline = t
	if s.rtimer != nil {
		s.rtimer.Stop()
	}
	if !t.IsZero() {
		s.rtimer = time.AfterFunc(time.Until(t), func() {
			s.mu.Lock()
			s.rcond.Broadcast()
			s.mu.Unlock()
			s.c.kickIfHolding(s)
		})
	}
	return nil
}

// SetWriteDeadline makes Writes waiting for flow-control window fail with
// an error wrapping os.ErrDeadlineExceeded after t; the zero time means
// none.
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.wdeadline = t
	if s.wtimer != nil {
		s.wtimer.Stop()
	}
	if !t.IsZero() {
		s.wtimer = time.AfterFunc(time.Until(t), func() {
			s.c.mu.Lock()
			s.c.sendCond.Broadcast()
			s.c.mu.Unlock()
		})
	}
	return nil
}
