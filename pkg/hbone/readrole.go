package hbone

import (
	"errors"
	"time"
)

// The read role. Whoever holds it reads frames from the connection and
// dispatches them; everybody else waits for dispatched data. A stream
// reader that finds its buffer empty takes the role itself when it is
// free, so in the common case of one active stream its bytes go from the
// socket to the caller without any goroutine hop, exactly as a plain TLS
// read does. When the role has been free for roleIdle (nobody is reading,
// e.g. only writers waiting for WINDOW_UPDATE) the connection's background
// read loop takes it; a stream that then wants to read kicks the loop out
// of its wait for the next frame (a read deadline in the past, which TLS
// survives) and is handed the role. A holder that finds its own data
// hands the role to the next waiting stream, if any.
//
// Lock order: rmu before a stream's mu; nothing takes rmu while holding a
// stream's mu.

// roleIdle is how long the role of a server connection stays free before
// the background loop takes it back (a new stream waits at most this long
// when no handler is reading). Request/response traffic re-takes it well
// within this. A short timer re-armed at this rate costs measurable
// latency in the Go runtime, so it is not shorter.
const roleIdle = 2 * time.Millisecond

var errKicked = errors.New("hbone: read kicked")

// readLoop is the background reader of the connection.
func (c *conn) readLoop() {
	for {
		select {
		case <-c.loopWake:
		case <-c.done:
			return
		}
		if !c.takeForLoop() {
			continue
		}
		for {
			err := c.readOne()
			if err == nil && c.nwaiters.Load() == 0 {
				continue
			}
			if err != nil && !errors.Is(err, errKicked) {
				c.fail(err)
				c.releaseRole(false)
				return
			}
			if c.releaseRole(false) {
				break
			}
		}
	}
}

// takeForLoop gives the role to the loop if it is free, nobody waits for
// it and it has been free for roleIdle; otherwise it re-arms the timer.
func (c *conn) takeForLoop() bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rbusy || len(c.rwaiters) > 0 {
		return false
	}
	if wait := roleIdle - time.Since(c.rfreeSince); wait > 0 && !c.rurgent && !c.isClosed() {
		c.armLoop(wait)
		return false
	}
	c.rbusy, c.rloop, c.rurgent = true, true, false
	return true
}

// needReader makes the background loop take the role now if nobody holds
// it: a writer waits for WINDOW_UPDATE, a dialer for its response.
func (c *conn) needReader() {
	c.rmu.Lock()
	if !c.rbusy {
		c.rurgent = true
		c.wakeLoop()
	}
	c.rmu.Unlock()
}

// armLoop makes sure a check of the role runs within d. The timer is
// not moved while armed: resetting it on every release would wake the
// runtime's network poller each time and cost more than the hop it saves.
// Called with rmu.
func (c *conn) armLoop(d time.Duration) {
	if c.rtimerArmed {
		return
	}
	c.rtimerArmed = true
	if c.rtimer == nil {
		c.rtimer = time.AfterFunc(d, c.checkRole)
		return
	}
	c.rtimer.Reset(d)
}

// checkRole runs on the timer: it wakes the loop if the role has been free
// for roleIdle, and re-arms if it was released more recently.
func (c *conn) checkRole() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rtimerArmed = false
	if c.rbusy || len(c.rwaiters) > 0 || c.isClosed() {
		return // the next release re-arms
	}
	if wait := roleIdle - time.Since(c.rfreeSince); wait > 0 {
		c.armLoop(wait)
		return
	}
	c.wakeLoop()
}

func (c *conn) wakeLoop() {
	select {
	case c.loopWake <- struct{}{}:
	default:
	}
}

// acquireRole takes the role for s if it is free; otherwise it queues s
// and kicks the loop if the loop holds the role.
func (c *conn) acquireRole(s *Stream) bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if !c.rbusy {
		c.rbusy, c.rloop, c.rholder, c.rurgent = true, false, s, false
		return true
	}
	if !s.rqueued {
		s.rqueued = true
		c.rwaiters = append(c.rwaiters, s)
		c.nwaiters.Add(1)
	}
	if c.rloop {
		c.kickLocked()
	}
	return false
}

// kickLocked interrupts the holder's wait for the next frame, or makes
// its next wait return at once if it is between frames.
func (c *conn) kickLocked() {
	switch {
	case c.inPeek && !c.kicked:
		c.kicked = true
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	case !c.inPeek:
		c.kickSoon = true
	}
}

// kickIfHolding interrupts s's socket wait if s holds the role (its
// deadline passed or it was closed).
func (c *conn) kickIfHolding(s *Stream) {
	c.rmu.Lock()
	if c.rholder == s {
		c.kickLocked()
	}
	c.rmu.Unlock()
}

// releaseRole hands the role to the first waiting stream, or frees it.
// A stream that will read again soon (lingering) leaves it free for
// roleIdle before the loop takes over; otherwise the loop takes it now.
// It reports whether the caller no longer holds it (always true).
func (c *conn) releaseRole(lingering bool) bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rholder = nil
	if len(c.rwaiters) > 0 {
		w := c.rwaiters[0]
		c.rwaiters[0] = nil
		c.rwaiters = c.rwaiters[1:]
		if len(c.rwaiters) == 0 {
			c.rwaiters = nil
		}
		c.nwaiters.Add(-1)
		c.rloop = false
		c.rholder = w
		w.mu.Lock()
		w.rqueued = false
		w.rgranted = true
		w.rcond.Broadcast()
		w.mu.Unlock()
		return true
	}
	c.rbusy, c.rloop = false, false
	c.rfreeSince = time.Now()
	switch {
	case c.isClosed():
	case c.spliced.Load() > 0:
		// Spliced streams have no reader of their own: read on now.
		c.rurgent = true
		c.wakeLoop()
	case lingering && c.client && c.needers.Load() == 0:
		// A client connection only receives what its streams asked for:
		// readers take the role themselves, and the keepalive tick
		// covers the rest. A dialer waiting for its response or a writer
		// waiting for window asked for a reader while this one held the
		// role (needers): the loop reads on for them, or they would wait
		// for the keepalive tick.
	case lingering:
		// A server connection may receive new streams at any time.
		c.armLoop(roleIdle)
	default:
		c.rurgent = true
		c.wakeLoop()
	}
	return true
}

// cancelWait removes s from the waiters after it was woken by data. It
// reports whether s had been granted the role meanwhile (and so must
// release it).
func (c *conn) cancelWait(s *Stream) bool {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rqueued {
		s.rqueued = false
		for i, w := range c.rwaiters {
			if w == s {
				c.rwaiters = append(c.rwaiters[:i], c.rwaiters[i+1:]...)
				c.nwaiters.Add(-1)
				break
			}
		}
		return false
	}
	granted := s.rgranted
	s.rgranted = false
	return granted
}

// readyLocked reports whether a reader of s has something to return.
func (s *Stream) readyLocked() bool {
	return s.rhead < len(s.rq) || s.remoteEnded.Load() || s.rerr != nil || s.localClosed ||
		(!s.rdeadline.IsZero() && !time.Now().Before(s.rdeadline))
}

// waitData blocks until s is ready, reading the connection itself when it
// can take the read role. If dst is not empty, DATA for s that arrives
// while s holds the role and has nothing queued is read straight into dst,
// and waitData returns how many bytes it put there (the caller owns them
// and must account them as consumed). Called and returns with s.mu held.
func (s *Stream) waitData(dst []byte) int {
	c := s.c
	s.mu.Unlock()
	took := c.acquireRole(s)
	s.mu.Lock()
	if !took {
		for !s.rgranted && !s.readyLocked() {
			s.rcond.Wait()
		}
		if s.rgranted {
			s.rgranted = false
		} else {
			s.mu.Unlock()
			granted := c.cancelWait(s)
			s.mu.Lock()
			if !granted {
				return 0
			}
		}
	}
	n := 0
	for n == 0 && !s.readyLocked() {
		s.mu.Unlock()
		c.dstStream, c.dst, c.dstN = s, dst, 0
		err := c.readOne()
		n = c.dstN
		c.dstStream, c.dst, c.dstN = nil, nil, 0
		if err != nil && !errors.Is(err, errKicked) {
			c.fail(err)
		}
		s.mu.Lock()
		if err != nil && !errors.Is(err, errKicked) {
			break
		}
	}
	lingering := !s.remoteEnded.Load() && s.rerr == nil && !s.localClosed
	s.mu.Unlock()
	c.releaseRole(lingering)
	s.mu.Lock()
	return n
}
