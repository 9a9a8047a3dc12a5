package hbone

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"
)

const (
	// wbufLimit is how much a writer may queue behind an active flush
	// before it waits; control frames from the read loop never wait but fail
	// the connection past controlLimit (a peer that floods PINGs and never
	// reads).
	wbufLimit    = 512 << 10
	controlLimit = 8 << 20
	// maxSendFrame caps DATA frames we send even when the peer allows more:
	// larger frames add store-and-forward delay at the receiver for no gain
	// (TLS records are 16 KiB anyway).
	maxSendFrame = 64 << 10
)

// ErrRefused is returned (wrapped) when the peer refused a stream before
// processing it (REFUSED_STREAM, or the stream was above the last stream
// of a GOAWAY); the request may be retried on another connection.
var ErrRefused = errors.New("hbone: stream refused by peer")

var errConnClosed = errors.New("hbone: connection closed")

// conn is one HTTP/2 connection, client or server side. Lock order: wmu
// before mu; a stream's mu is a leaf.
type conn struct {
	nc     net.Conn
	cork   *corkConn // under nc when nc is TLS over a corkConn
	lim    Limits
	client bool
	log    *slog.Logger
	// peerID is the peer's verified SPIFFE identity, set before start.
	peerID string

	// Read loop state, owned by the read loop goroutine.
	br         *bufio.Reader
	hdrBuf     [frameHeaderLen]byte
	fbuf       []byte
	hdec       *hpack.Decoder
	hblock     []byte // header block being assembled from CONTINUATIONs
	hstream    uint32 // stream of that block, 0 when none
	hflags     uint8
	fields     []hpack.HeaderField
	fieldsSize uint32
	tooBig     bool
	maxPeerID  uint32 // highest stream id the peer opened (server)
	sawFirst   bool
	dstStream  *Stream // a holder reading into its caller's buffer (readrole.go)
	dst        []byte
	dstN       int

	// The read role (readrole.go), under rmu.
	rmu         sync.Mutex
	rbusy       bool
	rloop       bool
	rholder     *Stream
	rwaiters    []*Stream
	nwaiters    atomic.Int32
	spliced     atomic.Int32 // streams in SpliceTo: the loop must keep reading
	needers     atomic.Int32 // dialers and writers waiting for frames no stream reader asks for
	inPeek      bool
	kicked      bool
	kickSoon    bool // a kick arrived while the holder was between frames
	rurgent     bool // someone needs frames read now (writer, dialer)
	rfreeSince  time.Time
	rtimer      *time.Timer
	rtimerArmed bool
	loopWake    chan struct{}

	// Write path, under wmu.
	wmu      sync.Mutex
	wcond    sync.Cond
	wbuf     []byte
	wspare   []byte
	flushing bool
	werr     error
	henc     *hpack.Encoder
	hbuf     bytes.Buffer
	nextID   uint32
	kick     chan struct{}

	// Shared state, under mu.
	mu             sync.Mutex
	sendCond       sync.Cond
	streams        map[uint32]*Stream
	sendWindow     int64
	peerInitWin    int64
	peerMaxFrame   uint32
	peerMaxStreams uint32
	recvWindow     int64
	recvUnacked    int64
	// readAhead counts received bytes whose connection window was given
	// back on arrival, before a reader consumed them (Limits.ConnReadAhead);
	// their later consumption pays this down instead of crediting again.
	// Invariant: readAhead <= bytes received and not yet consumed, so the
	// peer is never credited more than it sent.
	readAhead    int64
	lastAccepted uint32
	goAwaySent   bool
	goAwayRecv   bool
	goAwayLast   uint32
	closed       bool
	err          error
	idleSince    time.Time
	gotSettings  bool
	settingsCh   chan struct{}

	done      chan struct{}
	frames    atomic.Uint64
	pingTimer *time.Timer
	lastSeen  uint64
	silentFor time.Duration
	pingSeq   uint64

	// Hooks, set before start and never changed.
	onRequest     func(s *Stream, fields []hpack.HeaderField, tooBig bool) // server
	onStreamDone  func(s *Stream)
	onClose       func(c *conn)
	onStateChange func(c *conn) // GOAWAY received or settings changed (client)
}

func newConn(nc net.Conn, lim Limits, client bool, log *slog.Logger) *conn {
	c := &conn{
		nc:             nc,
		cork:           corkOf(nc),
		lim:            lim,
		client:         client,
		log:            log,
		br:             bufio.NewReaderSize(nc, 4<<10),
		streams:        make(map[uint32]*Stream),
		sendWindow:     defaultWindow,
		peerInitWin:    defaultWindow,
		peerMaxFrame:   minMaxFrameSize,
		peerMaxStreams: 1<<31 - 1,
		recvWindow:     int64(lim.ConnWindow),
		kick:           make(chan struct{}, 1),
		loopWake:       make(chan struct{}, 1),
		done:           make(chan struct{}),
		settingsCh:     make(chan struct{}),
		idleSince:      time.Now(),
	}
	c.wcond.L = &c.wmu
	c.sendCond.L = &c.mu
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.hdec = hpack.NewDecoder(4096, nil)
	c.hdec.SetMaxStringLength(4 * int(lim.MaxHeaderListSize))
	c.hdec.SetEmitFunc(c.emitField)
	if client {
		c.nextID = 1
	}
	return c
}

// start writes the preface (client) and our SETTINGS and starts the read
// and write loops. The caller has already consumed the client preface on a
// server connection.
func (c *conn) start() error {
	settings := []setting{
		{settingInitialWindowSize, c.lim.StreamWindow},
		{settingMaxFrameSize, c.lim.MaxFrameSize},
		{settingMaxHeaderListSize, c.lim.MaxHeaderListSize},
	}
	if c.client {
		settings = append(settings, setting{settingEnablePush, 0})
	} else {
		settings = append(settings, setting{settingMaxConcurrentStreams, c.lim.MaxConcurrentStreams})
	}
	if err := c.beginWrite(true); err != nil {
		return err
	}
	if c.client {
		c.wbuf = append(c.wbuf, clientPreface...)
	}
	c.wbuf = appendSettings(c.wbuf, false, settings...)
	if c.lim.ConnWindow > defaultWindow {
		c.wbuf = appendWindowUpdate(c.wbuf, 0, c.lim.ConnWindow-defaultWindow)
	}
	c.endWrite(true)
	c.pingTimer = time.AfterFunc(c.tick(), c.keepalive)
	go c.writeLoop()
	c.loopWake <- struct{}{}
	go c.readLoop()
	return nil
}

func (c *conn) tick() time.Duration {
	t := c.lim.PingInterval
	if c.lim.IdleTimeout > 0 && c.lim.IdleTimeout < t {
		t = c.lim.IdleTimeout
	}
	return max(t/2, time.Millisecond)
}

// keepalive runs on a timer: it pings a silent peer, closes a dead one and
// closes the connection after IdleTimeout without streams.
func (c *conn) keepalive() {
	if c.isClosed() {
		return
	}
	t := c.tick()
	seen := c.frames.Load()
	if seen != c.lastSeen {
		c.lastSeen, c.silentFor = seen, 0
	} else {
		c.silentFor += t
	}
	if c.silentFor >= c.lim.PingTimeout {
		c.fail(fmt.Errorf("hbone: peer silent for %s: %w", c.silentFor, errConnClosed))
		return
	}
	if c.silentFor >= c.lim.PingInterval {
		c.pingSeq++
		var d [8]byte
		for i := range d {
			d[i] = byte(c.pingSeq >> (8 * i))
		}
		if c.beginWrite(false) == nil {
			c.wbuf = appendPing(c.wbuf, false, d)
			c.endWrite(false)
		}
	}
	c.needReader() // control frames (PING, GOAWAY) get read at least this often
	c.mu.Lock()
	idle := len(c.streams) == 0 && c.lim.IdleTimeout > 0 && time.Since(c.idleSince) >= c.lim.IdleTimeout
	c.mu.Unlock()
	if idle {
		c.shutdown()
	}
	c.pingTimer.Reset(t)
}

func (c *conn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// creditConn returns n bytes of consumed connection window to the peer,
// less what read-ahead already gave back for them, batching updates to a
// quarter of the window.
func (c *conn) creditConn(n int64) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	paid := min(n, c.readAhead)
	c.readAhead -= paid
	c.recvUnacked += n - paid
	incr := c.takeCreditLocked()
	c.mu.Unlock()
	if incr > 0 {
		c.writeWindowUpdate(0, uint32(incr))
	}
}

// readAheadLocked gives n just-received bytes' connection window back at
// once while the read-ahead allowance lasts, and returns the increment to
// send (0 for none yet). c.mu must be held.
func (c *conn) readAheadLocked(n int64) int64 {
	if n <= 0 || c.readAhead+n > c.lim.ConnReadAhead {
		return 0
	}
	c.readAhead += n
	c.recvUnacked += n
	return c.takeCreditLocked()
}

// takeCreditLocked returns the window increment to send once enough is
// owed to the peer (a quarter of the window), and counts it as given.
// c.mu must be held.
func (c *conn) takeCreditLocked() int64 {
	incr := int64(0)
	if c.recvUnacked >= int64(c.lim.ConnWindow)/4 {
		incr = c.recvUnacked
		c.recvUnacked = 0
		c.recvWindow += incr
	}
	return incr
}

// shutdown starts a graceful close: GOAWAY with the last stream accepted,
// then close once no stream is left. It is idempotent.
func (c *conn) shutdown() {
	c.mu.Lock()
	if c.goAwaySent || c.closed {
		c.mu.Unlock()
		return
	}
	c.goAwaySent = true
	last := c.lastAccepted
	n := len(c.streams)
	c.mu.Unlock()
	if c.beginWrite(false) == nil {
		c.wbuf = appendGoAway(c.wbuf, last, ErrCodeNo)
		c.endWrite(false)
	}
	if n == 0 {
		go c.closeGracefully()
	}
}

// closeGracefully flushes, signals end of data to the peer, and lets the
// read loop see the peer close (bounded by a second) so our last frames
// are not lost to a TCP reset.
func (c *conn) closeGracefully() {
	c.needReader()
	c.flushWait()
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.nc.(closeWriter); ok {
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		if cw.CloseWrite() == nil {
			t := time.NewTimer(time.Second)
			select {
			case <-c.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
	c.fail(errConnClosed)
}

// fail closes the connection at once and fails every stream with err. A
// connError is announced to the peer with GOAWAY first. It is idempotent.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = err
	streams := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	c.streams = map[uint32]*Stream{}
	last := c.lastAccepted
	c.sendCond.Broadcast()
	c.mu.Unlock()

	var ce connError
	if errors.As(err, &ce) {
		c.log.Debug("hbone connection error", "err", err)
		c.wmu.Lock()
		if c.werr == nil && !c.flushing {
			_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.nc.Write(appendGoAway(nil, last, ce.Code))
		}
		c.wmu.Unlock()
	}
	close(c.done)
	_ = c.nc.Close()
	c.wmu.Lock()
	if c.werr == nil {
		c.werr = errConnClosed
	}
	c.wcond.Broadcast()
	c.wmu.Unlock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	serr := fmt.Errorf("%w: %w", errConnClosed, err)
	if errors.Is(err, errConnClosed) {
		serr = err
	}
	for _, s := range streams {
		s.terminate(serr)
		if c.onStreamDone != nil {
			c.onStreamDone(s)
		}
	}
	if c.onClose != nil {
		c.onClose(c)
	}
}

// removeStream forgets a finished stream; idempotent.
func (c *conn) removeStream(s *Stream) {
	c.mu.Lock()
	cur, ok := c.streams[s.id]
	if !ok || cur != s {
		c.mu.Unlock()
		return
	}
	delete(c.streams, s.id)
	left := len(c.streams)
	if left == 0 {
		c.idleSince = time.Now()
	}
	closing := left == 0 && (c.goAwaySent || c.goAwayRecv) && !c.closed
	c.mu.Unlock()
	if c.onStreamDone != nil {
		c.onStreamDone(s)
	}
	if closing {
		go c.closeGracefully()
	}
}

// reserveSend waits until s may send and returns how many bytes (at most
// want) it may send in one DATA frame.
func (c *conn) reserveSend(s *Stream, want int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if s.werr != nil {
			return 0, s.werr
		}
		if c.closed {
			return 0, fmt.Errorf("%w: %w", errConnClosed, c.err)
		}
		if s.sendWindow <= 0 || c.sendWindow <= 0 {
			c.needReader()
		}
		if s.sendWindow > 0 && c.sendWindow > 0 {
			n := int64(min(want, int(c.peerMaxFrame), maxSendFrame))
			n = min(n, s.sendWindow, c.sendWindow)
			s.sendWindow -= n
			c.sendWindow -= n
			return int(n), nil
		}
		if !s.wdeadline.IsZero() && !time.Now().Before(s.wdeadline) {
			return 0, errTimeout
		}
		c.needers.Add(1)
		c.sendCond.Wait()
		c.needers.Add(-1)
	}
}

// unreserveSend gives back n bytes of connection window that reserveSend
// or tryReserveSend granted for a frame that was then not sent. Without it
// each such race would shrink the connection's send window for good, until
// no stream could send. s's own window is given back too when s is not
// nil: a stream whose write was only put off may still send; one that was
// reset or closed meanwhile (s nil) cannot send again.
func (c *conn) unreserveSend(s *Stream, n int) {
	c.mu.Lock()
	if s != nil {
		s.sendWindow += int64(n)
	}
	c.sendWindow += int64(n)
	c.sendCond.Broadcast()
	c.mu.Unlock()
}

// readPayload reads a non-DATA frame payload into the reusable buffer.
func (c *conn) readPayload(n uint32) ([]byte, error) {
	if cap(c.fbuf) < int(n) {
		c.fbuf = make([]byte, n)
	}
	p := c.fbuf[:n]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return nil, err
	}
	return p, nil
}
