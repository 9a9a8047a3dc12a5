//go:build !unix

package upstream

import "net"

// probeSocket is not supported here: ok is false and the deadline probe
// is used.
func probeSocket(net.Conn) (alive, ok bool) { return false, false }
