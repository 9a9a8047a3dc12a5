package hbone

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// StatusError is returned by Dial when the server answered the CONNECT
// with a status other than 200.
type StatusError struct {
	// Code is the HTTP status (401 denied, 503 upstream unreachable, ...).
	Code int
}

// Error describes the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("hbone: CONNECT answered %d %s", e.Code, http.StatusText(e.Code))
}

// writeResponse sends the response HEADERS of a server stream.
func (s *Stream) writeResponse(status int, end bool) error {
	c := s.c
	if err := c.beginWrite(true); err != nil {
		return err
	}
	if s.wstate != wOpen {
		c.wmu.Unlock()
		return s.writeErr()
	}
	c.mu.Lock()
	maxFrame := int(c.peerMaxFrame)
	c.mu.Unlock()
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpackField(":status", strconv.Itoa(status)))
	c.wbuf = appendHeaders(c.wbuf, s.id, end, c.hbuf.Bytes(), maxFrame)
	if end {
		s.wstate = wEnded
	}
	c.endWrite(true)
	if end {
		s.localEnded.Store(true)
		s.finishIfDone()
	}
	return nil
}

// reject answers status with END_STREAM and, if the client is still
// sending, tells it to stop with RST_STREAM(NO_ERROR).
func (s *Stream) reject(status int) error {
	err := s.writeResponse(status, true)
	s.closeLocal(ErrCodeNo)
	return err
}

// writeRequest registers a new client stream and sends its CONNECT
// HEADERS. The stream ID is allocated under the write lock so IDs reach
// the wire in increasing order.
func (c *conn) writeRequest(s *Stream, authority string, hdr http.Header) error {
	if err := c.beginWrite(true); err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed || c.goAwayRecv || c.goAwaySent || c.nextID > 1<<31-1 {
		c.mu.Unlock()
		c.wmu.Unlock()
		return fmt.Errorf("connection going away: %w", ErrRefused)
	}
	s.id = c.nextID
	c.nextID += 2
	s.sendWindow = c.peerInitWin
	c.streams[s.id] = s
	maxFrame := int(c.peerMaxFrame)
	c.mu.Unlock()
	c.hbuf.Reset()
	_ = c.henc.WriteField(hpackField(":method", http.MethodConnect))
	_ = c.henc.WriteField(hpackField(":authority", authority))
	for k, vs := range hdr {
		name := strings.ToLower(k)
		for _, v := range vs {
			_ = c.henc.WriteField(hpackField(name, v))
		}
	}
	c.wbuf = appendHeaders(c.wbuf, s.id, false, c.hbuf.Bytes(), maxFrame)
	c.endWrite(true)
	return nil
}
