package proxy

import "net"

// Application-facing sockets end with RST unless ztunnel ends them
// gracefully. ztunnel sets SO_LINGER {on, 0} on the sockets it shares with
// an application: the ones it accepts from the pod (15001, and 15006 from
// a client outside the mesh) and the ones it dials to the pod's
// application for an inbound connection. A close is then abortive: if
// ztunnel dies (SIGKILL, OOM kill) the kernel resets these connections
// instead of ending them with a FIN, so an application in the middle of a
// transfer sees ECONNRESET, never a clean end of stream that would
// silently truncate what it received. The same holds for every close on an
// error path (refused, revoked, an upstream that reset), so a failure
// reaches the application as a reset.
//
// A connection that ends cleanly in both directions is closed gracefully:
// linger is switched off again just before the final close, so queued data
// is delivered and the application sees a FIN. Half-closes
// (shutdown(SHUT_WR)) are not affected by SO_LINGER and always send their
// FIN after the data.

// linger is implemented by *net.TCPConn.
type linger interface{ SetLinger(sec int) error }

// abortOnClose makes every later close of c, ours or the kernel's when the
// process dies, reset the connection.
func abortOnClose(c net.Conn) {
	if l, ok := c.(linger); ok {
		_ = l.SetLinger(0)
	}
}

// closeGracefully undoes abortOnClose before a clean close: queued data is
// sent, then a FIN.
func closeGracefully(c net.Conn) {
	if l, ok := c.(linger); ok {
		_ = l.SetLinger(-1)
	}
}

// closeBoth closes a and b at the end of a splice: gracefully (a FIN) when
// both directions ended cleanly, else as they are (a reset for the
// application-facing sockets).
func closeBoth(a, b net.Conn, clean bool) {
	if clean {
		closeGracefully(a)
		closeGracefully(b)
	}
	_ = a.Close()
	_ = b.Close()
}
