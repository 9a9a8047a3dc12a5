package hbone

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/net/http2/hpack"
)

// readOne reads and dispatches one frame. Only the holder of the read
// role calls it. While it waits for the first byte of a frame it can be
// kicked (see kick), and then returns errKicked having consumed nothing.
func (c *conn) readOne() error {
	if c.br.Buffered() == 0 {
		c.rmu.Lock()
		if c.kickSoon {
			c.kickSoon = false
			c.rmu.Unlock()
			return errKicked
		}
		c.inPeek = true
		c.rmu.Unlock()
		_, err := c.br.Peek(1)
		c.rmu.Lock()
		c.inPeek = false
		kicked := c.kicked
		if kicked {
			c.kicked = false
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		c.rmu.Unlock()
		if err != nil {
			if kicked && errors.Is(err, os.ErrDeadlineExceeded) {
				return errKicked
			}
			return err
		}
	}
	h, err := readFrameHeader(c.br, c.hdrBuf[:])
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("hbone: read frame header: %w", err)
		}
		return err
	}
	c.frames.Add(1)
	if h.Length > c.lim.MaxFrameSize {
		return connError{ErrCodeFrameSize, "frame larger than MAX_FRAME_SIZE"}
	}
	if !c.sawFirst && (h.Type != frameSettings || h.has(flagAck)) {
		return connError{ErrCodeProtocol, "first frame is not SETTINGS"}
	}
	c.sawFirst = true
	if c.hstream != 0 && h.Type != frameContinuation {
		return connError{ErrCodeProtocol, "expected CONTINUATION"}
	}
	if h.Type == frameData {
		return c.onData(h)
	}
	p, err := c.readPayload(h.Length)
	if err != nil {
		return err
	}
	return c.dispatch(h, p)
}

func (c *conn) dispatch(h frameHeader, p []byte) error {
	switch h.Type {
	case frameHeaders:
		if h.StreamID == 0 {
			return connError{ErrCodeProtocol, "HEADERS on stream 0"}
		}
		frag, err := headerBlockFragment(h, p)
		if err != nil {
			return err
		}
		c.hblock = append(c.hblock[:0], frag...)
		c.hstream, c.hflags = h.StreamID, h.Flags
		if h.has(flagEndHeaders) {
			return c.endHeaders()
		}
		return c.checkBlockSize()
	case frameContinuation:
		if c.hstream == 0 || h.StreamID != c.hstream {
			return connError{ErrCodeProtocol, "unexpected CONTINUATION"}
		}
		c.hblock = append(c.hblock, p...)
		if h.has(flagEndHeaders) {
			return c.endHeaders()
		}
		return c.checkBlockSize()
	case frameSettings:
		return c.onSettings(h, p)
	case framePing:
		d, err := parsePing(h, p)
		if err != nil {
			return err
		}
		if !h.has(flagAck) && c.beginWrite(false) == nil {
			c.wbuf = appendPing(c.wbuf, true, d)
			c.endWrite(false)
		}
		return nil
	case frameGoAway:
		last, code, err := parseGoAway(h, p)
		if err != nil {
			return err
		}
		c.onGoAway(last, code)
		return nil
	case frameWindowUpdate:
		incr, err := parseWindowUpdate(p)
		if err != nil {
			return err
		}
		return c.onWindowUpdate(h.StreamID, incr)
	case frameRSTStream:
		code, err := parseRSTStream(h, p)
		if err != nil {
			return err
		}
		if s := c.stream(h.StreamID); s != nil {
			s.reset(code, true)
		}
		return nil
	case framePriority:
		if h.StreamID == 0 {
			return connError{ErrCodeProtocol, "PRIORITY on stream 0"}
		}
		return nil
	case framePushPromise:
		return connError{ErrCodeProtocol, "PUSH_PROMISE not enabled"}
	default:
		return nil // unknown frame types are ignored
	}
}

func (c *conn) stream(id uint32) *Stream {
	c.mu.Lock()
	s := c.streams[id]
	c.mu.Unlock()
	return s
}

func (c *conn) checkBlockSize() error {
	if len(c.hblock) > 4*int(c.lim.MaxHeaderListSize)+4096 {
		return connError{ErrCodeEnhanceYourCalm, "header block too large"}
	}
	return nil
}

func (c *conn) emitField(f hpack.HeaderField) {
	c.fieldsSize += f.Size()
	if c.fieldsSize > c.lim.MaxHeaderListSize {
		c.tooBig = true
		c.hdec.SetEmitEnabled(false)
		return
	}
	c.fields = append(c.fields, f)
}

func (c *conn) endHeaders() error {
	id, flags := c.hstream, c.hflags
	c.hstream = 0
	c.fields, c.fieldsSize, c.tooBig = c.fields[:0], 0, false
	c.hdec.SetEmitEnabled(true)
	if _, err := c.hdec.Write(c.hblock); err != nil {
		return connError{ErrCodeCompression, err.Error()}
	}
	if err := c.hdec.Close(); err != nil {
		return connError{ErrCodeCompression, err.Error()}
	}
	end := flags&flagEndStream != 0
	if c.client {
		return c.onResponse(id, end)
	}
	return c.onRequestHeaders(id, end)
}

func (c *conn) onRequestHeaders(id uint32, end bool) error {
	c.mu.Lock()
	if s := c.streams[id]; s != nil {
		c.mu.Unlock()
		s.reset(ErrCodeProtocol, false) // trailers are not part of CONNECT
		return nil
	}
	if id%2 == 0 {
		c.mu.Unlock()
		return connError{ErrCodeProtocol, "HEADERS on a server stream"}
	}
	if id <= c.maxPeerID {
		c.mu.Unlock()
		return nil // a stream already closed (reset by us): ignore
	}
	c.maxPeerID = id
	c.lastAccepted = id
	refuse := c.goAwaySent || c.closed || uint32(len(c.streams)) >= c.lim.MaxConcurrentStreams
	var s *Stream
	if !refuse {
		s = newStream(c, id)
		s.sendWindow = c.peerInitWin
		c.streams[id] = s
	}
	c.mu.Unlock()
	if refuse {
		c.writeRST(id, ErrCodeRefusedStream)
		return nil
	}
	if end {
		s.remoteEnded.Store(true)
	}
	c.onRequest(s, c.fields, c.tooBig)
	return nil
}

func (c *conn) writeRST(id uint32, code ErrCode) {
	if c.beginWrite(false) == nil {
		c.wbuf = appendRSTStream(c.wbuf, id, code)
		c.endWrite(false)
	}
}

func (c *conn) onResponse(id uint32, end bool) error {
	s := c.stream(id)
	if s == nil {
		return nil // a stream we already reset
	}
	status := 0
	for _, f := range c.fields {
		if f.Name == ":status" {
			status, _ = strconv.Atoi(f.Value)
		}
	}
	if s.gotResponse {
		if !end {
			s.reset(ErrCodeProtocol, false)
			return nil
		}
		s.deliver(nil, nil, 0, 0, true) // trailers end the stream
		s.finishIfDone()
		return nil
	}
	if status < 100 || status > 999 {
		s.reset(ErrCodeProtocol, false)
		return nil
	}
	if status < 200 {
		if end {
			s.reset(ErrCodeProtocol, false)
		}
		return nil
	}
	s.gotResponse = true
	if end {
		s.remoteEnded.Store(true)
	}
	select {
	case s.resp <- response{status: status, end: end}:
	default:
	}
	if end {
		s.finishIfDone()
	}
	return nil
}

func (c *conn) onSettings(h frameHeader, p []byte) error {
	err := parseSettings(h, p, func(s setting) error {
		switch s.ID {
		case settingInitialWindowSize:
			c.mu.Lock()
			defer c.mu.Unlock()
			delta := int64(s.Val) - c.peerInitWin
			c.peerInitWin = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					return connError{ErrCodeFlowControl, "stream window overflow"}
				}
			}
			c.sendCond.Broadcast()
		case settingMaxFrameSize:
			c.mu.Lock()
			c.peerMaxFrame = s.Val
			c.mu.Unlock()
		case settingMaxConcurrentStreams:
			c.mu.Lock()
			c.peerMaxStreams = s.Val
			c.mu.Unlock()
		case settingHeaderTableSize:
			c.wmu.Lock()
			c.henc.SetMaxDynamicTableSizeLimit(s.Val)
			c.wmu.Unlock()
		}
		return nil
	})
	if err != nil || h.has(flagAck) {
		return err
	}
	if c.beginWrite(false) == nil {
		c.wbuf = appendSettings(c.wbuf, true)
		c.endWrite(false)
	}
	c.mu.Lock()
	first := !c.gotSettings
	c.gotSettings = true
	c.mu.Unlock()
	if first {
		close(c.settingsCh)
	}
	if c.onStateChange != nil {
		c.onStateChange(c)
	}
	return nil
}

func (c *conn) onWindowUpdate(id uint32, incr uint32) error {
	if incr == 0 {
		if id == 0 {
			return connError{ErrCodeProtocol, "WINDOW_UPDATE of 0"}
		}
		if s := c.stream(id); s != nil {
			s.reset(ErrCodeProtocol, false)
		}
		return nil
	}
	c.mu.Lock()
	if id == 0 {
		c.sendWindow += int64(incr)
		if c.sendWindow > maxWindow {
			c.mu.Unlock()
			return connError{ErrCodeFlowControl, "connection window overflow"}
		}
		c.sendCond.Broadcast()
		c.mu.Unlock()
		return nil
	}
	s := c.streams[id]
	if s == nil {
		c.mu.Unlock()
		return nil
	}
	s.sendWindow += int64(incr)
	over := s.sendWindow > maxWindow
	c.sendCond.Broadcast()
	c.mu.Unlock()
	if over {
		s.reset(ErrCodeFlowControl, false)
	}
	return nil
}

func (c *conn) onGoAway(last uint32, code ErrCode) {
	if code != ErrCodeNo {
		c.log.Debug("hbone peer sent GOAWAY", "code", code.String(), "last_stream", last)
	}
	c.mu.Lock()
	c.goAwayRecv = true
	c.goAwayLast = last
	var refused []*Stream
	for id, s := range c.streams {
		if id > last && (id%2 == 1) == c.client {
			refused = append(refused, s)
		}
	}
	c.mu.Unlock()
	for _, s := range refused {
		s.terminate(&StreamError{Code: ErrCodeRefusedStream, Remote: true})
		c.removeStream(s)
	}
	c.mu.Lock()
	empty := len(c.streams) == 0 && !c.closed
	c.mu.Unlock()
	if c.onStateChange != nil {
		c.onStateChange(c)
	}
	if empty {
		go c.closeGracefully()
	}
}

// onData reads a DATA frame's payload into a pooled buffer and queues it
// on its stream, enforcing connection and stream flow control.
func (c *conn) onData(h frameHeader) error {
	if h.StreamID == 0 {
		return connError{ErrCodeProtocol, "DATA on stream 0"}
	}
	frameLen := int64(h.Length)
	c.mu.Lock()
	if frameLen > c.recvWindow {
		c.mu.Unlock()
		return connError{ErrCodeFlowControl, "connection window exceeded"}
	}
	c.recvWindow -= frameLen
	s := c.streams[h.StreamID]
	if s == nil && !c.client && h.StreamID > c.maxPeerID {
		c.mu.Unlock()
		return connError{ErrCodeProtocol, "DATA on an idle stream"}
	}
	incr := c.readAheadLocked(frameLen)
	c.mu.Unlock()
	if incr > 0 {
		c.writeWindowUpdate(0, uint32(incr))
	}
	n := int(h.Length)
	pad := 0
	if h.has(flagPadded) {
		if n < 1 {
			return connError{ErrCodeProtocol, "DATA padding: " + errShortFrame.Error()}
		}
		b, err := c.br.ReadByte()
		if err != nil {
			return err
		}
		n--
		pad = int(b)
		if pad > n {
			return connError{ErrCodeProtocol, "DATA padding exceeds payload"}
		}
	}
	dataLen := n - pad
	if s == nil || s.remoteEnded.Load() {
		if _, err := c.br.Discard(n); err != nil {
			return err
		}
		c.creditConn(frameLen)
		if s != nil {
			s.reset(ErrCodeStreamClosed, false)
		}
		return nil
	}
	end := h.has(flagEndStream)
	if s == c.dstStream && len(c.dst) > 0 && dataLen > 0 {
		if ok, err := c.readDirect(s, frameLen, dataLen, pad, end); ok || err != nil {
			return err
		}
	}
	var buf *[]byte
	var small []byte
	switch {
	case dataLen == 0:
	case dataLen <= smallData:
		// Small payloads are coalesced into the stream's last buffer so
		// a flood of tiny frames cannot pin a pooled buffer each.
		if cap(c.fbuf) < smallData {
			c.fbuf = make([]byte, smallData)
		}
		small = c.fbuf[:dataLen]
		if _, err := io.ReadFull(c.br, small); err != nil {
			return err
		}
	default:
		buf = getBuf(dataLen)
		if _, err := io.ReadFull(c.br, *buf); err != nil {
			putBuf(buf)
			return err
		}
	}
	if pad > 0 {
		if _, err := c.br.Discard(pad); err != nil {
			return err
		}
	}
	if !s.deliver(buf, small, frameLen, frameLen-int64(dataLen), end) {
		c.creditConn(frameLen)
		s.reset(ErrCodeFlowControl, false)
		return nil
	}
	if end {
		s.finishIfDone()
	}
	return nil
}

// readDirect reads a DATA payload for the stream holding the read role
// straight into the buffer its Read passed (no intermediate copy), queuing
// whatever does not fit. It reports false, having read nothing, when the
// stream cannot take it that way (queued data first, window exceeded,
// closed).
func (c *conn) readDirect(s *Stream, frameLen int64, dataLen, pad int, end bool) (bool, error) {
	s.mu.Lock()
	if frameLen > s.recvWindow || s.rhead < len(s.rq) || s.localClosed || s.rerr != nil {
		s.mu.Unlock()
		return false, nil
	}
	s.recvWindow -= frameLen
	s.unacked += frameLen - int64(dataLen)
	s.mu.Unlock()
	n := min(dataLen, len(c.dst))
	if _, err := io.ReadFull(c.br, c.dst[:n]); err != nil {
		return true, err
	}
	c.dstN, c.dst = n, nil
	var rest *[]byte
	if dataLen > n {
		rest = getBuf(dataLen - n)
		if _, err := io.ReadFull(c.br, *rest); err != nil {
			putBuf(rest)
			return true, err
		}
	}
	if pad > 0 {
		if _, err := c.br.Discard(pad); err != nil {
			return true, err
		}
	}
	s.mu.Lock()
	if rest != nil {
		s.rq = append(s.rq, rest)
	}
	if end {
		s.remoteEnded.Store(true)
	}
	s.rcond.Signal()
	s.mu.Unlock()
	c.creditConn(frameLen - int64(dataLen))
	if end {
		s.finishIfDone()
	}
	return true, nil
}
