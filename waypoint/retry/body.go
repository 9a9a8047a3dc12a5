package retry

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultReplayLimit is the body size up to which a request can be
// retried when the proxy has no other limit.
const DefaultReplayLimit = 64 << 10

// ErrNotReplayable is returned by Body.Attempt, and by an attempt's reader,
// when more than the limit was read, so the body cannot be sent again.
var ErrNotReplayable = errors.New("request body is not replayable: larger than the retry buffer")

// errSuperseded is returned by the reader of an attempt after a later
// Attempt began.
var errSuperseded = errors.New("request body: attempt superseded by a retry")

var errBodyClosed = errors.New("request body: closed")

// Body wraps a request body so that it can be sent once per attempt: it
// keeps the first limit bytes it has read, and each Attempt reads those
// again and then continues with the rest of the original. Once more than
// limit bytes were read, the body can no longer be replayed and the
// request must not be retried. A Body is safe for concurrent use; a
// reader from an earlier Attempt fails once a later Attempt begins, so a
// transport still draining an abandoned attempt cannot steal bytes (bytes
// it was already reading from the original are kept for the new attempt
// while they fit the buffer).
//
// Typical use: b := retry.NewBody(r.Body, limit); r.Body, _ = b.Attempt();
// r.GetBody = b.Attempt; defer b.Close(). When r.ContentLength exceeds
// the limit the request cannot be retried and wrapping is pointless.
type Body struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when a read of src ends
	src     io.ReadCloser
	limit   int
	buf     []byte
	srcPos  int   // bytes read from src so far
	srcErr  error // sticky: io.EOF or the error src returned
	reading bool  // a Read of src is in progress (without mu held)
	over    bool  // read past limit: not replayable
	closed  bool
	gen     uint64 // number of the current attempt
}

// NewBody wraps src (nil means an empty body), buffering up to limit
// bytes (limit < 0 means DefaultReplayLimit).
func NewBody(src io.ReadCloser, limit int) *Body {
	if limit < 0 {
		limit = DefaultReplayLimit
	}
	b := &Body{src: src, limit: limit}
	b.cond.L = &b.mu
	if src == nil {
		b.srcErr = io.EOF
	}
	return b
}

// Replayable reports whether every byte read so far is buffered, so that a
// new Attempt would send the same body.
func (b *Body) Replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.over
}

// Attempt returns a reader of the whole body for a new attempt and
// invalidates readers of earlier attempts. It fails with ErrNotReplayable
// once more than the limit was read, and with the original's error if
// reading it failed. Closing the returned reader does not close the
// original; Close does.
func (b *Body) Attempt() (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, errBodyClosed
	case b.over:
		return nil, ErrNotReplayable
	case b.srcErr != nil && b.srcErr != io.EOF:
		return nil, fmt.Errorf("request body: %w", b.srcErr)
	}
	b.gen++
	return &attemptReader{b: b, gen: b.gen}, nil
}

// Close closes the original body. It is idempotent and makes every
// attempt's reader fail.
func (b *Body) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	if b.src == nil {
		return nil
	}
	return b.src.Close()
}

// attemptReader reads the body for one attempt.
type attemptReader struct {
	b   *Body
	gen uint64
	off int // bytes of the body this reader has returned
}

func (r *attemptReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b := r.b
	b.mu.Lock()
	for {
		switch {
		case b.closed:
			b.mu.Unlock()
			return 0, errBodyClosed
		case r.gen != b.gen:
			b.mu.Unlock()
			return 0, errSuperseded
		case r.off < len(b.buf):
			n := copy(p, b.buf[r.off:])
			r.off += n
			b.mu.Unlock()
			return n, nil
		case r.off != b.srcPos:
			// Bytes between the buffer's end and src's position were
			// read past the limit by an earlier attempt: lost.
			b.mu.Unlock()
			return 0, ErrNotReplayable
		case b.srcErr != nil:
			err := b.srcErr
			b.mu.Unlock()
			return 0, err
		}
		if !b.reading {
			break
		}
		b.cond.Wait()
	}
	b.reading = true
	b.mu.Unlock()

	n, err := b.src.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	b.cond.Broadcast()
	if n > 0 {
		b.srcPos += n
		if !b.over && len(b.buf)+n <= b.limit {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.over = true
		}
	}
	if err != nil {
		b.srcErr = err
	}
	if r.gen != b.gen || b.closed {
		// Superseded while reading: the bytes stay in the buffer (if
		// they fit) for the current attempt.
		return 0, errSuperseded
	}
	r.off += n
	return n, err
}

// Close does not close the original body; Body.Close does.
func (r *attemptReader) Close() error { return nil }
