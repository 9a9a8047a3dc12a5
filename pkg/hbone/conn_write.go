package hbone

import (
	"fmt"
)

// beginWrite locks the write path. With wait it waits while an active
// flush has more than wbufLimit queued; without (the read loop, which must
// never block on the network) it fails the connection past controlLimit.
func (c *conn) beginWrite(wait bool) error {
	c.wmu.Lock()
	for wait && c.werr == nil && c.flushing && len(c.wbuf) >= wbufLimit {
		c.wcond.Wait()
	}
	if c.werr == nil && !wait && len(c.wbuf) >= controlLimit {
		c.werr = connError{ErrCodeEnhanceYourCalm, "peer does not read"}
	}
	if c.werr != nil {
		err := c.werr
		c.wmu.Unlock()
		return err
	}
	return nil
}

// endWrite unlocks the write path. If nobody is flushing, inline makes the
// caller flush (its frames reach the socket without a goroutine hop, and
// frames queued meanwhile by others go out in the same writes); otherwise
// the write loop is kicked.
func (c *conn) endWrite(inline bool) {
	if c.flushing || len(c.wbuf) == 0 {
		c.wmu.Unlock()
		return
	}
	if !inline {
		c.wmu.Unlock()
		select {
		case c.kick <- struct{}{}:
		default:
		}
		return
	}
	c.flushing = true
	for len(c.wbuf) > 0 && c.werr == nil {
		buf := c.wbuf
		c.wbuf = c.wspare[:0]
		c.wmu.Unlock()
		err := c.writeOut(buf)
		c.wmu.Lock()
		if cap(buf) <= 4*wbufLimit {
			c.wspare = buf[:0]
		} else {
			c.wspare = nil
		}
		if err != nil {
			c.werr = err
		}
		c.wcond.Broadcast()
	}
	c.flushing = false
	err := c.werr
	c.wcond.Broadcast()
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("hbone: write: %w", err))
	}
}

// writeOut writes buf to the connection, corking the socket under TLS
// when buf makes several records so they leave in one system call.
func (c *conn) writeOut(buf []byte) error {
	cc := c.cork
	if cc == nil || len(buf) <= corkMin {
		_, err := c.nc.Write(buf)
		return err
	}
	cc.cork()
	_, err := c.nc.Write(buf)
	if uerr := cc.uncork(); err == nil {
		err = uerr
	}
	return err
}

func (c *conn) writeLoop() {
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		c.wmu.Lock()
		c.endWrite(true)
	}
}

// flushWait waits until everything queued has been written.
func (c *conn) flushWait() {
	c.wmu.Lock()
	for c.werr == nil && (c.flushing || len(c.wbuf) > 0) {
		if !c.flushing {
			c.endWrite(true)
			c.wmu.Lock()
			continue
		}
		c.wcond.Wait()
	}
	c.wmu.Unlock()
}

// writeControl queues a small frame built by fn from the read loop or a
// timer; it never blocks on the network.
func (c *conn) writeWindowUpdate(streamID uint32, incr uint32) {
	if c.beginWrite(false) != nil {
		return
	}
	c.wbuf = appendWindowUpdate(c.wbuf, streamID, incr)
	c.endWrite(false)
}

// tlsRecord is the most plaintext crypto/tls puts in one record.
const tlsRecord = 16 << 10

// directMin is the smallest DATA payload sent mostly from the writer's own
// buffer instead of being copied into wbuf.
const directMin = 2 * tlsRecord

// writeDataDirect sends one DATA frame carrying p, copying into wbuf only
// its header and as much of p as fills the TLS record the header starts;
// the rest of p goes to TLS from the caller's buffer, under the same cork,
// so the frame costs the same records and system calls as a copied one.
// Called with wmu held by a writer that found nobody flushing and a cork
// under TLS; returns with wmu released.
func (c *conn) writeDataDirect(id uint32, p []byte) {
	c.wbuf = appendFrameHeader(c.wbuf, len(p), frameData, 0, id)
	k := min(len(p), tlsRecord-len(c.wbuf)%tlsRecord)
	c.wbuf = append(c.wbuf, p[:k]...)
	buf := c.wbuf
	c.wbuf = c.wspare[:0]
	c.flushing = true
	c.wmu.Unlock()
	c.cork.cork()
	_, err := c.nc.Write(buf)
	if err == nil {
		_, err = c.nc.Write(p[k:])
	}
	if uerr := c.cork.uncork(); err == nil {
		err = uerr
	}
	c.wmu.Lock()
	if cap(buf) <= 4*wbufLimit {
		c.wspare = buf[:0]
	} else {
		c.wspare = nil
	}
	c.flushing = false
	c.wcond.Broadcast()
	if err != nil {
		c.werr = err
		c.wmu.Unlock()
		c.fail(fmt.Errorf("hbone: write: %w", err))
		return
	}
	c.endWrite(true) // what others queued meanwhile
}
