package hbone

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// StreamError reports that a stream was reset with RST_STREAM.
type StreamError struct {
	// Code is the RST_STREAM error code.
	Code ErrCode
	// Remote is true when the peer sent the reset.
	Remote bool
}

// Error describes the reset.
func (e *StreamError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by peer"
	}
	return fmt.Sprintf("hbone: stream reset %s: %s", who, e.Code)
}

// Is lets errors.Is(err, ErrRefused) match a REFUSED_STREAM reset.
func (e *StreamError) Is(target error) bool {
	return target == ErrRefused && e.Code == ErrCodeRefusedStream && e.Remote
}

var errTimeout = os.ErrDeadlineExceeded

// write-side states, under conn.wmu.
const (
	wOpen uint8 = iota
	wEnded
	wReset
)

// Stream is one CONNECT tunnel. It implements net.Conn with TCP's
// half-close: CloseWrite sends END_STREAM (the peer reads io.EOF), Read
// returns io.EOF after the peer's END_STREAM, and Close sends RST_STREAM
// (CANCEL) unless the peer already finished sending, in which case it
// finishes our side with END_STREAM, as TCP sends FIN when nothing is left
// unread. A reset received from the peer fails Write at once; Read first
// returns the data that arrived before it, then a *StreamError.
//
// Read and Write may be called concurrently with each other and with
// Close; concurrent Writes are serialised in unspecified order.
type Stream struct {
	c  *conn
	id uint32

	// Receive side, under mu.
	mu          sync.Mutex
	rcond       sync.Cond
	rq          []*[]byte // received payloads; rq[rhead:] are unread
	rhead       int
	roff        int
	recvWindow  int64
	unacked     int64
	rerr        error
	rdeadline   time.Time
	rtimer      *time.Timer
	localClosed bool
	rqueued     bool // waiting for the read role (under c.rmu and mu)
	rgranted    bool // handed the read role (under c.rmu and mu)

	remoteEnded atomic.Bool
	localEnded  atomic.Bool

	// Send side: sendWindow, werr and wdeadline under c.mu; wstate under
	// c.wmu; wlock serialises Write and CloseWrite.
	wlock      sync.Mutex
	sendWindow int64
	werr       error
	wdeadline  time.Time
	wtimer     *time.Timer
	wstate     uint8

	// Direct delivery (sink.go), under mu: while WriteTo waits with
	// nothing queued, sink is its destination, and the read role writes
	// the stream's DATA there itself when that does not block. sunk counts
	// those bytes and sinkErr keeps a failed write, both for WriteTo.
	sink    sinkWriter
	sunk    int64
	sinkErr error
	spliced *splice // set by SpliceTo

	resp        chan response // client: the response HEADERS
	gotResponse bool          // client: read loop only
	closeOnce   sync.Once

	// Filled by the owner (pool or server).
	release func()
	local   net.Addr
	remote  net.Addr
}

type response struct {
	status int
	end    bool
	err    error
}

func newStream(c *conn, id uint32) *Stream {
	s := &Stream{c: c, id: id, recvWindow: int64(c.lim.StreamWindow),
		local: c.nc.LocalAddr(), remote: c.nc.RemoteAddr()}
	s.rcond.L = &s.mu
	return s
}

// ID returns the HTTP/2 stream identifier.
func (s *Stream) ID() uint32 { return s.id }

// Read reads tunnelled bytes. It returns io.EOF after the peer's
// END_STREAM once all data was read.
func (s *Stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	for {
		if s.localClosed {
			s.mu.Unlock()
			return 0, net.ErrClosed
		}
		if s.rhead < len(s.rq) {
			n := 0
			for n < len(p) && s.rhead < len(s.rq) {
				b := *s.rq[s.rhead]
				k := copy(p[n:], b[s.roff:])
				n += k
				s.roff += k
				if s.roff == len(b) {
					s.popLocked()
				}
			}
			s.consumedLocked(n)
			return n, nil
		}
		if s.remoteEnded.Load() {
			s.mu.Unlock()
			return 0, io.EOF
		}
		if s.rerr != nil {
			err := s.rerr
			s.mu.Unlock()
			return 0, err
		}
		if !s.rdeadline.IsZero() && !time.Now().Before(s.rdeadline) {
			s.mu.Unlock()
			return 0, errTimeout
		}
		if n := s.waitData(p); n > 0 {
			s.consumedLocked(n)
			return n, nil
		}
	}
}

// WriteTo writes the stream's bytes to w until io.EOF without an
// intermediate copy; io.Copy uses it.
//
// While it waits for data with nothing queued and w is a TCP connection,
// the goroutine reading the HBONE connection writes arriving DATA to w
// itself when the socket takes it without blocking (sink.go): the usual
// request/response message then reaches w without waking this goroutine.
func (s *Stream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	sink := sinkFor(w)
	s.mu.Lock()
	for {
		if s.localClosed {
			s.mu.Unlock()
			return total, net.ErrClosed
		}
		if s.rhead < len(s.rq) {
			b, off := s.rq[s.rhead], s.roff
			s.rq[s.rhead] = nil
			s.advanceLocked()
			n := len(*b) - off
			s.consumedLocked(n)
			k, err := w.Write((*b)[off:])
			putBuf(b)
			total += int64(k)
			if err != nil {
				return total, err
			}
			s.mu.Lock()
			continue
		}
		if s.remoteEnded.Load() {
			s.mu.Unlock()
			return total, nil
		}
		if s.rerr != nil {
			err := s.rerr
			s.mu.Unlock()
			return total, err
		}
		if !s.rdeadline.IsZero() && !time.Now().Before(s.rdeadline) {
			s.mu.Unlock()
			return total, errTimeout
		}
		s.sink = sink
		s.waitData(nil)
		s.sink = nil
		total += s.sunk
		s.sunk = 0
		if err := s.sinkErr; err != nil {
			s.sinkErr = nil
			s.mu.Unlock()
			return total, err
		}
	}
}

// popLocked frees the head payload.
func (s *Stream) popLocked() {
	putBuf(s.rq[s.rhead])
	s.rq[s.rhead] = nil
	s.advanceLocked()
}

// advanceLocked moves past the head payload, rewinding the queue when it
// empties so its backing array is reused (small ones only, so an idle
// stream keeps little).
func (s *Stream) advanceLocked() {
	s.rhead++
	s.roff = 0
	if s.rhead == len(s.rq) {
		s.rhead = 0
		if cap(s.rq) <= 64 {
			s.rq = s.rq[:0]
		} else {
			s.rq = nil
		}
	}
}

// consumedLocked releases s.mu and returns n bytes of window to the peer.
func (s *Stream) consumedLocked(n int) {
	s.unacked += int64(n)
	incr := int64(0)
	if s.unacked >= int64(s.c.lim.StreamWindow)/4 && !s.remoteEnded.Load() && s.rerr == nil {
		incr = s.unacked
		s.unacked = 0
		s.recvWindow += incr
	}
	s.mu.Unlock()
	if incr > 0 {
		s.c.writeWindowUpdate(s.id, uint32(incr))
	}
	s.c.creditConn(int64(n))
}

// smallData is the largest DATA payload copied into the tail buffer of a
// stream rather than given a buffer of its own.
const smallData = 1 << 10

// deliver queues a received DATA payload (read loop): either b, a pooled
// buffer the stream takes over, or small, copied. It reports false when
// the frame exceeds the stream window (a flow-control violation).
func (s *Stream) deliver(b *[]byte, small []byte, frameLen int64, padding int64, end bool) bool {
	s.mu.Lock()
	if frameLen > s.recvWindow {
		s.mu.Unlock()
		if b != nil {
			putBuf(b)
		}
		return false
	}
	s.recvWindow -= frameLen
	wake, sunk := true, 0
	if s.sink != nil && s.sinkErr == nil && s.rhead == len(s.rq) && !s.localClosed && s.rerr == nil {
		b, small, sunk, padding, wake = s.deliverDirect(b, small, padding, end)
	}
	switch {
	case s.localClosed || s.rerr != nil:
		if b != nil {
			padding += int64(len(*b))
			putBuf(b)
		}
		padding += int64(len(small))
	case b != nil:
		s.rq = append(s.rq, b)
	case len(small) > 0:
		if n := len(s.rq); n > s.rhead && cap(*s.rq[n-1])-len(*s.rq[n-1]) >= len(small) {
			*s.rq[n-1] = append(*s.rq[n-1], small...)
		} else {
			nb := getBuf(len(small))
			copy(*nb, small)
			s.rq = append(s.rq, nb)
		}
	}
	s.unacked += padding
	if end {
		s.remoteEnded.Store(true)
	}
	if sp := s.spliced; sp != nil {
		sp.n += s.sunk
		s.sunk = 0
		if wake {
			s.kickSpliceLocked()
		}
	} else if wake {
		s.rcond.Signal()
	}
	if sunk > 0 {
		s.consumedLocked(sunk) // unlocks
	} else {
		s.mu.Unlock()
	}
	if padding > 0 {
		s.c.creditConn(padding)
	}
	return true
}

// Write sends p as DATA frames, waiting for flow-control window.
func (s *Stream) Write(p []byte) (int, error) {
	s.wlock.Lock()
	defer s.wlock.Unlock()
	total := 0
	for len(p) > 0 {
		n, err := s.c.reserveSend(s, len(p))
		if err != nil {
			return total, err
		}
		if err := s.writeFrame(p[:n], false); err != nil {
			s.c.unreserveSend(nil, n)
			return total, err
		}
		total += n
		p = p[n:]
	}
	return total, nil
}

func (s *Stream) writeFrame(p []byte, end bool) error {
	if err := s.c.beginWrite(true); err != nil {
		return err
	}
	if s.wstate != wOpen {
		state := s.wstate
		s.c.wmu.Unlock()
		return s.closedErr(state)
	}
	if !end && len(p) >= directMin && s.c.cork != nil && !s.c.flushing {
		s.c.writeDataDirect(s.id, p)
		return nil
	}
	s.c.wbuf = appendDataFrame(s.c.wbuf, s.id, end, p)
	if end {
		s.wstate = wEnded
	}
	s.c.endWrite(true)
	return nil
}

var errWriteAfterClose = errors.New("hbone: write after CloseWrite")

// closedErr is the error of a write to s once its write side left wOpen
// (state): after CloseWrite, or after a reset or the connection's end.
// c.wmu must not be held.
func (s *Stream) closedErr(state uint8) error {
	if state == wEnded {
		return errWriteAfterClose
	}
	return s.writeErr()
}

func (s *Stream) writeErr() error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.werr != nil {
		return s.werr
	}
	return net.ErrClosed
}

// CloseWrite sends END_STREAM: the peer reads io.EOF after the data
// written so far, like shutdown(SHUT_WR) on TCP. It is idempotent.
func (s *Stream) CloseWrite() error {
	s.wlock.Lock()
	defer s.wlock.Unlock()
	if s.localEnded.Load() {
		return nil
	}
	if err := s.writeFrame(nil, true); err != nil {
		return err
	}
	s.localEnded.Store(true)
	s.finishIfDone()
	return nil
}

func (s *Stream) finishIfDone() {
	if s.localEnded.Load() && s.remoteEnded.Load() {
		s.c.removeStream(s)
	}
}

// Close ends the stream and releases it. If the peer has finished sending
// it sends END_STREAM where still needed (a graceful close); otherwise it
// resets the stream with RST_STREAM(CANCEL). Pending Reads and Writes fail
// with net.ErrClosed. It is idempotent.
func (s *Stream) Close() error {
	if s.remoteEnded.Load() && !s.localEnded.Load() {
		_ = s.CloseWrite()
	}
	s.closeLocal(ErrCodeCancel)
	return nil
}

// Abort resets the stream with RST_STREAM(CANCEL) unless it already
// finished in both directions, like closing a TCP socket with SO_LINGER 0.
func (s *Stream) Abort() {
	s.closeLocal(ErrCodeCancel)
}

func (s *Stream) closeLocal(code ErrCode) {
	s.closeOnce.Do(func() {
		if !s.localEnded.Load() || !s.remoteEnded.Load() {
			s.reset(code, false)
		}
		s.mu.Lock()
		s.localClosed = true
		// Data received but never read still counts against the
		// connection's window: give it back, or every stream closed with
		// unread data would shrink the window for good until the
		// connection stalls.
		dropped := -int64(s.roff)
		for _, b := range s.rq[s.rhead:] {
			dropped += int64(len(*b))
			putBuf(b)
		}
		s.rq, s.rhead, s.roff = nil, 0, 0
		s.rcond.Broadcast()
		s.kickSpliceLocked()
		s.mu.Unlock()
		s.c.creditConn(dropped)
		s.c.kickIfHolding(s)
		s.c.mu.Lock()
		if s.werr == nil {
			s.werr = net.ErrClosed
		}
		s.c.sendCond.Broadcast()
		s.c.mu.Unlock()
		s.c.removeStream(s)
		s.stopTimers()
	})
}

// reset sends RST_STREAM (unless remote) and fails both directions.
func (s *Stream) reset(code ErrCode, remote bool) {
	if !remote {
		if s.c.beginWrite(false) == nil {
			if s.wstate != wReset {
				s.c.wbuf = appendRSTStream(s.c.wbuf, s.id, code)
			}
			s.wstate = wReset
			s.c.endWrite(false)
		}
	} else {
		s.c.wmu.Lock()
		s.wstate = wReset
		s.c.wmu.Unlock()
	}
	s.terminate(&StreamError{Code: code, Remote: remote})
	s.c.removeStream(s)
}

// terminate fails pending and future I/O with err (data already received
// stays readable).
func (s *Stream) terminate(err error) {
	s.mu.Lock()
	if s.rerr == nil {
		s.rerr = err
	}
	s.rcond.Broadcast()
	s.kickSpliceLocked()
	s.mu.Unlock()
	s.c.mu.Lock()
	if s.werr == nil {
		s.werr = err
	}
	s.c.sendCond.Broadcast()
	s.c.mu.Unlock()
	if s.resp != nil {
		select {
		case s.resp <- response{err: err}:
		default:
		}
	}
}

func (s *Stream) stopTimers() {
	s.mu.Lock()
	if s.rtimer != nil {
		s.rtimer.Stop()
	}
	s.mu.Unlock()
	s.c.mu.Lock()
	if s.wtimer != nil {
		s.wtimer.Stop()
	}
	s.c.mu.Unlock()
}

var _ net.Conn = (*Stream)(nil)
