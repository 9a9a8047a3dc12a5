package retry

import (
	"errors"
	"io"
	"sync"
)

// DefaultReplayLimit is the body size up to which a request can be
// retried when the proxy has no other limit.
const DefaultReplayLimit = 64 << 10

// ErrNotReplayable is returned by Body.Attempt when more than the limit was
// read, so the body cannot be sent again.
var ErrNotReplayable = errors.New("request body is not replayable: larger than the retry buffer")

// Body wraps a request body so that it can be sent once per attempt: it
// keeps the first limit bytes it has read, and each Attempt reads those
// again and then continues with the rest of the original. Once more than
// limit bytes were read, the body can no longer be replayed and the
// request must not be retried. A Body is safe for concurrent use; a
// reader from an earlier Attempt fails once a later Attempt begins, so a
// transport still draining an abandoned attempt cannot steal bytes.
//
// Typical use: b := retry.NewBody(r.Body, limit); r.Body, _ = b.Attempt();
// r.GetBody = b.Attempt; defer b.Close().
type Body struct {
	mu     sync.Mutex
	src    io.ReadCloser
	limit  int
	buf    []byte
	srcEOF bool
	over   bool // read past limit: not replayable
	gen    uint64
}

// NewBody wraps src (nil or http.NoBody mean an empty body), buffering up
// to limit bytes (limit < 0 means DefaultReplayLimit).
func NewBody(src io.ReadCloser, limit int) *Body {
	if limit < 0 {
		limit = DefaultReplayLimit
	}
	return &Body{src: src, limit: limit}
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
// once more than the limit was read. Closing the returned reader does not
// close the original; Close does.
func (b *Body) Attempt() (io.ReadCloser, error) {
	// TODO(WP-RESIL): implement.
	return nil, ErrNotReplayable
}

// Close closes the original body. It is idempotent.
func (b *Body) Close() error {
	// TODO(WP-RESIL): implement.
	return nil
}
