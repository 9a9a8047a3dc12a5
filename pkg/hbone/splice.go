package hbone

import (
	"errors"
	"io"
	"net"
)

// splice is the state of a Stream in SpliceTo, under the stream's mu.
type splice struct {
	dst      *net.TCPConn
	raw      sinkWriter
	done     func(int64, error)
	n        int64 // bytes written to dst
	draining bool  // a drain goroutine owns the queue and dst
	finished bool
}

// ErrSpliced is returned by SpliceTo for a stream already spliced.
var ErrSpliced = errors.New("hbone: stream already spliced")

// SpliceTo copies what the peer sends on the stream to dst, and when the
// peer ends the stream (END_STREAM) and every byte is written, shuts down
// dst's write side (CloseWrite), like io.Copy(dst, s) followed by
// CloseWrite, but without a goroutine waiting on the stream: the goroutine
// that reads the HBONE connection writes each payload to dst itself when
// dst's socket takes it without blocking (see sink.go), and a goroutine is
// started only to finish writes that would block, ending when they are
// done. An idle spliced stream thus costs no goroutine, and a message
// reaches dst without waking one.
//
// done is called exactly once, on a goroutine of its own, with the bytes
// written to dst and nil after the peer's END_STREAM, or the error that
// ended the copy (a reset, Close, a failed write to dst; dst is then left
// as it is). While spliced the stream must not be read (Read, WriteTo);
// writing to it is unaffected. Read deadlines do not apply. On systems
// without Unix sockets it runs io.Copy on a goroutine instead.
func (s *Stream) SpliceTo(dst *net.TCPConn, done func(n int64, err error)) error {
	raw := sinkFor(dst)
	if raw == nil {
		go func() {
			n, err := io.Copy(dst, s)
			if err == nil {
				err = dst.CloseWrite()
			}
			done(n, err)
		}()
		return nil
	}
	s.mu.Lock()
	if s.spliced != nil {
		s.mu.Unlock()
		return ErrSpliced
	}
	sp := &splice{dst: dst, raw: raw, done: done}
	s.spliced = sp
	s.c.spliced.Add(1)
	s.sink = raw
	s.kickSpliceLocked() // data or an end that arrived before
	s.mu.Unlock()
	s.c.needReader()
	return nil
}

// kickSpliceLocked moves a spliced stream on after its queue or state
// changed: it finishes the splice on an error or, once everything is
// written, on the peer's end, and starts a drain goroutine when data is
// queued. Called with s.mu held; a no-op for streams not spliced.
func (s *Stream) kickSpliceLocked() {
	sp := s.spliced
	if sp == nil || sp.finished || sp.draining {
		return
	}
	switch {
	case s.sinkErr != nil:
		err := s.sinkErr
		s.sinkErr = nil
		s.finishSpliceLocked(err)
	case s.localClosed:
		s.finishSpliceLocked(net.ErrClosed)
	case s.rhead < len(s.rq):
		sp.draining = true
		s.sink = nil
		go s.drainSplice(sp)
	case s.rerr != nil:
		s.finishSpliceLocked(s.rerr)
	case s.remoteEnded.Load():
		s.finishSpliceLocked(nil)
	}
}

// finishSpliceLocked ends the splice with err (nil: the peer ended the
// stream and everything was written) and reports it to done.
func (s *Stream) finishSpliceLocked(err error) {
	sp := s.spliced
	if sp.finished {
		return
	}
	sp.finished, sp.draining = true, false
	s.sink = nil
	s.c.spliced.Add(-1)
	n, dst, done := sp.n, sp.dst, sp.done
	go func() {
		if err == nil {
			err = dst.CloseWrite()
		}
		done(n, err)
	}()
}

// drainSplice writes the queued data of a spliced stream to its
// destination with blocking writes, then hands direct delivery back to the
// connection's reader.
func (s *Stream) drainSplice(sp *splice) {
	s.mu.Lock()
	for !sp.finished && !s.localClosed && s.rhead < len(s.rq) {
		b, off := s.rq[s.rhead], s.roff
		s.rq[s.rhead] = nil
		s.advanceLocked()
		n := len(*b) - off
		s.consumedLocked(n)
		k, err := sp.dst.Write((*b)[off:])
		putBuf(b)
		s.mu.Lock()
		sp.n += int64(k)
		if err != nil {
			s.sinkErr = err
			break
		}
	}
	if !sp.finished {
		sp.draining = false
		s.sink = sp.raw
		s.kickSpliceLocked()
	}
	s.mu.Unlock()
}
