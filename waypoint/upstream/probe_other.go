//go:build !unix

package upstream

import "net"

// socketProbe is not supported here: newSocketProbe returns nil and the
// deadline probe is used.
type socketProbe struct{}

func newSocketProbe(net.Conn) *socketProbe { return nil }

func (*socketProbe) alive() bool { return false }
