package inpod

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// Mark is the SO_MARK ztunnel puts on every socket it creates in a pod's
// network namespace; the in-pod redirect rules let marked traffic through.
const Mark = 0x539

// Ports of the in-pod listeners.
const (
	OutboundPort     = 15001
	InboundPlainPort = 15006
	InboundHBONEPort = 15008
)

// ErrNotSupported is returned on systems without Linux network namespaces.
var ErrNotSupported = errors.New("in-pod sockets are only supported on Linux")

// Listeners are a pod's listeners, all inside the pod's netns.
type Listeners struct {
	Outbound     net.Listener
	InboundPlain net.Listener
	InboundHBONE net.Listener
	// InboundQUIC is the UDP socket on InboundHBONEPort that serves HBONE
	// over QUIC; nil when the manager has QUIC off. Close leaves it open:
	// closing a UDP socket would end every QUIC connection at once without
	// a word to the peers, so its server drains first (on Pod.Draining,
	// holding the pod with Pod.Hold until it has closed its connections)
	// and the pod closes the socket when it is released, after its handler
	// returned.
	InboundQUIC net.PacketConn
}

// Close closes every TCP listener; it is idempotent.
func (l *Listeners) Close() {
	for _, ln := range []net.Listener{l.Outbound, l.InboundPlain, l.InboundHBONE} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// socketFactory creates sockets inside one network namespace. The real one
// is netnsSockets; tests may substitute their own.
type socketFactory interface {
	// Listen opens a marked SO_REUSEPORT TCP listener on addr. The IPv6
	// unspecified address asks for one dual-stack listener (IPv4 arrives
	// v4-mapped); where the netns has no IPv6 it listens on 0.0.0.0.
	Listen(ctx context.Context, addr netip.AddrPort) (net.Listener, error)
	// Dial connects to dst from a marked socket; a valid src binds the
	// socket to src with IP_TRANSPARENT (any port).
	Dial(ctx context.Context, src netip.Addr, dst netip.AddrPort) (net.Conn, error)
	// ListenPacket opens a marked UDP socket on addr (port 0: ephemeral;
	// a fixed port is SO_REUSEPORT).
	// The IPv6 unspecified address asks for one dual-stack socket; where
	// the netns has no IPv6 it binds 0.0.0.0.
	ListenPacket(ctx context.Context, addr netip.AddrPort) (net.PacketConn, error)
	// MigrateRequests asks the kernel to hand connections queued on a
	// closing SO_REUSEPORT listener to another listener of the group, so a
	// drain does not reset them.
	MigrateRequests() error
	// Close releases sockets the factory holds in reserve.
	Close()
}
