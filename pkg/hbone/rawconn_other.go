//go:build !unix

package hbone

import "net"

// rawIO is not available here: corkConn uses the net.Conn.
type rawIO struct{}

func newRawIO(net.Conn) *rawIO { return nil }

func (*rawIO) read([]byte) (int, error)  { panic("unreachable") }
func (*rawIO) write([]byte) (int, error) { panic("unreachable") }
