package udp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/weftmesh/weft/pkg/netns"
)

// ErrNotSupported is returned on systems without Linux network namespaces
// and transparent sockets.
var ErrNotSupported = errors.New("udp: in-pod transparent sockets are only supported on linux")

// packetListener reads captured datagrams with their original destination.
type packetListener interface {
	// ReadFrom waits for one datagram and returns it, in a buffer taken
	// from bufs (a pool of *[]byte of maxDatagram bytes) only once the
	// datagram is there, with its length, source and original
	// destination. The caller puts the buffer back; on an error there is
	// none.
	ReadFrom(bufs *sync.Pool) (b *[]byte, n int, src, dst netip.AddrPort, err error)
	Close() error
}

// sockets creates the sockets of one pod's flows inside its netns. All but
// the raw one carry ztunnel's mark 0x539.
type sockets interface {
	// Listen opens the transparent listener on 127.0.0.1:15005.
	Listen(ctx context.Context) (packetListener, error)
	// DialFrom opens a transparent socket bound to local (a foreign
	// address; port 0 picks one) and connected to remote.
	DialFrom(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error)
	// Dial opens a socket on an ephemeral port connected to remote.
	Dial(ctx context.Context, remote netip.AddrPort) (net.Conn, error)
	// Raw opens a send-only raw socket that writes UDP datagrams from any
	// address and port: replies to the application from its original
	// destination, which no socket can bind when the application (or
	// anything else in the pod) holds that port on the wildcard address.
	Raw() (rawWriter, error)
}

// rawWriter writes UDP datagrams with a chosen source. It is safe for
// concurrent use.
type rawWriter interface {
	WriteFromTo(src, dst netip.AddrPort, payload []byte) error
	Close() error
}

// replyConn is an outbound flow's application side: writes go to the
// application from the flow's original destination.
type replyConn struct {
	w        rawWriter
	from, to netip.AddrPort
}

func (r replyConn) Write(b []byte) (int, error) {
	if err := r.w.WriteFromTo(r.from, r.to, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Close does nothing: the pod's raw socket outlives its flows.
func (r replyConn) Close() error { return nil }

// netnsSockets is sockets in one netns, created through pkg/netns.
type netnsSockets struct{ ns *netns.NetNS }
