package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Listen creates a listener inside the namespace. lc may be nil; set
// lc.Control to apply socket options (SO_MARK, IP_TRANSPARENT,
// SO_REUSEPORT, ...) before bind. For IP networks the host in address must
// be empty or an IP literal: name resolution would not run in the
// namespace. The listener stays in the namespace and may be used from any
// goroutine.
func (n *NetNS) Listen(ctx context.Context, lc *net.ListenConfig, network, address string) (net.Listener, error) {
	if err := checkLiteral(network, address); err != nil {
		return nil, err
	}
	if lc == nil {
		lc = &net.ListenConfig{}
	}
	var l net.Listener
	err := n.Do(func() error {
		var err error
		l, err = lc.Listen(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in netns %s: %w", network, address, n.path, err)
	}
	return l, nil
}

// ListenPacket is Listen for packet sockets (udp, unixgram).
func (n *NetNS) ListenPacket(ctx context.Context, lc *net.ListenConfig, network, address string) (net.PacketConn, error) {
	if err := checkLiteral(network, address); err != nil {
		return nil, err
	}
	if lc == nil {
		lc = &net.ListenConfig{}
	}
	var pc net.PacketConn
	err := n.Do(func() error {
		var err error
		pc, err = lc.ListenPacket(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen packet %s %s in netns %s: %w", network, address, n.path, err)
	}
	return pc, nil
}

// Dial connects from inside the namespace. d may be nil; set d.Control for
// socket options and d.LocalAddr to pick a source. The address host must be
// an IP literal for IP networks. The call blocks (on a thread in the
// namespace) until connected, failed, or ctx is done.
func (n *NetNS) Dial(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
	if err := checkLiteral(network, address); err != nil {
		return nil, err
	}
	if d == nil {
		d = &net.Dialer{}
	}
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s %s in netns %s: %w", network, address, n.path, err)
	}
	return c, nil
}

func checkLiteral(network, address string) error {
	if !strings.HasPrefix(network, "tcp") && !strings.HasPrefix(network, "udp") && !strings.HasPrefix(network, "ip") {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("address %q: %w", address, err)
	}
	if host == "" {
		return nil
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("address %q: host must be an IP literal inside a netns", address)
	}
	return nil
}
