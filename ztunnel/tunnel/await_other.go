//go:build !linux

package tunnel

import (
	"context"
	"net"
)

// awaitDatagram does not wait where waiting for readability without
// reading is not implemented: the QUIC server starts at once (unless ctx
// has ended).
func awaitDatagram(ctx context.Context, _ net.PacketConn) bool {
	return ctx.Err() == nil
}
