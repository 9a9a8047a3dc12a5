package zds

import (
	"net"
	"sync"
	"time"
)

// DefaultTimeout bounds every send and every expected reply (hello, ack).
const DefaultTimeout = 5 * time.Second

// Conn is one ZDS connection. One goroutine may send while another
// receives; concurrent sends (or receives) are serialised. Close is
// idempotent and unblocks pending calls.
type Conn struct {
	uc      *net.UnixConn
	timeout time.Duration

	sendMu sync.Mutex
	recvMu sync.Mutex
	buf    []byte
	oob    []byte

	closeOnce sync.Once
	closeErr  error
}

// SetTimeout changes the per-message timeout (DefaultTimeout by default).
// Call it before using the connection.
func (c *Conn) SetTimeout(d time.Duration) { c.timeout = d }

// Close closes the connection.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.uc.Close() })
	return c.closeErr
}

// Listener accepts ztunnel connections on the node agent's side.
type Listener struct {
	ul   *net.UnixListener
	path string

	closeOnce sync.Once
	closeErr  error
}

// Path returns the socket path.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file. It is idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.ul.Close() })
	return l.closeErr
}
