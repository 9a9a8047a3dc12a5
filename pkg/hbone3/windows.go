package hbone3

import (
	"github.com/quic-go/quic-go"

	"github.com/weftmesh/weft/pkg/hbone"
)

// Flow-control receive windows of both ends, sized like the HTTP/2
// transport's (pkg/hbone: 4 MiB per stream, 16 MiB per connection), and
// granted from the first byte: quic-go's own defaults start at 512 KiB per
// stream and 768 KiB per connection and grow only as it measures the
// round trip, so a short transfer never reaches line rate. The memory a
// stalled reader can pin is the same bound as HTTP/2's (the connection
// window), near quic-go's default maximum (15 MiB).
const (
	StreamReceiveWindow     = hbone.DefaultStreamWindow
	ConnectionReceiveWindow = hbone.DefaultConnWindow
)

// withWindows sets c's receive windows and returns c.
func withWindows(c *quic.Config) *quic.Config {
	c.InitialStreamReceiveWindow = StreamReceiveWindow
	c.MaxStreamReceiveWindow = StreamReceiveWindow
	c.InitialConnectionReceiveWindow = ConnectionReceiveWindow
	c.MaxConnectionReceiveWindow = ConnectionReceiveWindow
	return c
}
