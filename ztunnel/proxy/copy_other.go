//go:build !linux

package proxy

import (
	"io"
	"net"
)

func copyFromTCP(dst io.Writer, src *net.TCPConn) (int64, error) { return io.Copy(dst, src) }
