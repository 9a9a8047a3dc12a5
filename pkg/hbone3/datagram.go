package hbone3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
)

// ConnectUDP is the :protocol of an RFC 9298 CONNECT-UDP request.
const ConnectUDP = "connect-udp"

// udpPathPrefix is the default URI template's fixed part:
// /.well-known/masque/udp/{target_host}/{target_port}/.
const udpPathPrefix = "/.well-known/masque/udp/"

// udpPath returns the request path that asks for target.
func udpPath(target netip.AddrPort) string {
	host := target.Addr().String()
	if target.Addr().Is6() {
		host = strings.ReplaceAll(host, ":", "%3A")
	}
	return udpPathPrefix + host + "/" + strconv.Itoa(int(target.Port())) + "/"
}

// parseUDPPath extracts the target of a CONNECT-UDP request path. The
// target must be an IP address: the mesh resolves names before it tunnels.
func parseUDPPath(p string) (netip.AddrPort, error) {
	rest, ok := strings.CutPrefix(p, udpPathPrefix)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("connect-udp path %q: want %s{host}/{port}/", p, udpPathPrefix)
	}
	rest, ok = strings.CutSuffix(rest, "/")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("connect-udp path %q: missing trailing slash", p)
	}
	host, port, ok := strings.Cut(rest, "/")
	if !ok || strings.Contains(port, "/") {
		return netip.AddrPort{}, fmt.Errorf("connect-udp path %q: want {host}/{port}", p)
	}
	host = strings.ReplaceAll(strings.ReplaceAll(host, "%3A", ":"), "%3a", ":")
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("connect-udp path %q: target host must be an IP address", p)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return netip.AddrPort{}, fmt.Errorf("connect-udp path %q: target port must be 1-65535", p)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(n)), nil
}

// udpContextID is the context ID of UDP payloads (RFC 9298 section 4).
const udpContextID = 0

// ErrDatagramTooLarge is returned by WriteDatagram when the payload does
// not fit in one QUIC datagram on the path.
var ErrDatagramTooLarge = errors.New("hbone3: udp payload too large for a quic datagram")

// DatagramConn is one UDP flow carried by CONNECT-UDP: each UDP payload
// travels as one HTTP datagram with context ID 0. Datagrams with other
// context IDs are dropped, as RFC 9298 requires of unknown ones.
type DatagramConn struct {
	str           rawStream
	target        netip.AddrPort
	local, remote net.Addr
	peerID        string
	done          func()
	closeOnce     sync.Once
}

func newDatagramConn(str rawStream, target netip.AddrPort, local, remote net.Addr, peerID string, done func()) *DatagramConn {
	return &DatagramConn{str: str, target: target, local: local, remote: remote, peerID: peerID, done: done}
}

// Target is the UDP destination the flow was opened for.
func (d *DatagramConn) Target() netip.AddrPort { return d.target }

// PeerIdentity returns the verified SPIFFE identity of the other end.
func (d *DatagramConn) PeerIdentity() string { return d.peerID }

// LocalAddr returns the local address of the QUIC connection.
func (d *DatagramConn) LocalAddr() net.Addr { return d.local }

// RemoteAddr returns the remote address of the QUIC connection.
func (d *DatagramConn) RemoteAddr() net.Addr { return d.remote }

// WriteDatagram sends one UDP payload. Delivery is unreliable, as UDP's.
func (d *DatagramConn) WriteDatagram(payload []byte) error {
	b := make([]byte, 0, 1+len(payload))
	b = quicvarint.Append(b, udpContextID)
	b = append(b, payload...)
	if err := d.str.SendDatagram(b); err != nil {
		var tooLarge *quic.DatagramTooLargeError
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("%w: %d bytes, at most %d fit", ErrDatagramTooLarge, len(payload), tooLarge.MaxDatagramPayloadSize-1)
		}
		return fmt.Errorf("send datagram: %w", err)
	}
	return nil
}

// ReadDatagram returns the next UDP payload. It returns an error when ctx
// ends or the flow is closed.
func (d *DatagramConn) ReadDatagram(ctx context.Context) ([]byte, error) {
	for {
		b, err := d.str.ReceiveDatagram(ctx)
		if err != nil {
			return nil, err
		}
		id, n, err := quicvarint.Parse(b)
		if err != nil || id != udpContextID {
			continue // malformed or unknown context: drop silently
		}
		return b[n:], nil
	}
}

// Close ends the flow; the peer's reads fail. It is idempotent.
func (d *DatagramConn) Close() error {
	d.closeOnce.Do(func() {
		d.str.CancelRead(codeNoError)
		_ = d.str.Close()
		if d.done != nil {
			d.done()
		}
	})
	return nil
}
