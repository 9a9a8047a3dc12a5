package sniff

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// Conn is a connection whose first bytes were read to sniff it; Read
// returns them again before reading on. It keeps the half-close of the
// connection it wraps.
type Conn struct {
	net.Conn
	prefix []byte
}

// NewConn returns c with prefix to be read first.
func NewConn(c net.Conn, prefix []byte) *Conn { return &Conn{Conn: c, prefix: prefix} }

// Read implements net.Conn.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the connection when the wrapped one supports it,
// else closes it.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// Detect reads from c until Classify decides, at most MaxRequestLine bytes
// and until deadline. It returns the protocol and a Conn that replays what
// was read. A connection that ends, fails or stays silent before deciding is
// TCP (a server-first protocol sends nothing first); the read deadline is
// cleared before returning. Only a read error other than end of stream or
// timeout is returned, with TCP.
func Detect(c net.Conn, deadline time.Time) (Protocol, *Conn, error) {
	if err := c.SetReadDeadline(deadline); err != nil {
		return TCP, NewConn(c, nil), err
	}
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(2*cap(buf), MaxRequestLine))
			copy(nb, buf)
			buf = nb
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if p := Classify(buf); p != Unknown {
			return p, NewConn(c, buf), nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) {
				return TCP, NewConn(c, buf), nil
			}
			return TCP, NewConn(c, buf), err
		}
	}
}
