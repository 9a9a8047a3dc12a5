package hbone

import "time"

// Defaults, matching Istio's ztunnel where it has a value.
const (
	DefaultStreamWindow      = 4 << 20
	DefaultConnWindow        = 16 << 20
	DefaultConnReadAhead     = 32 << 20
	DefaultMaxFrameSize      = 1 << 20
	DefaultMaxHeaderListSize = 16 << 10
	DefaultPingInterval      = 10 * time.Second
	DefaultPingTimeout       = 20 * time.Second
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultServerIdleTimeout = 10 * time.Minute
	DefaultPoolIdleTimeout   = 5 * time.Minute
	DefaultServerMaxStreams  = 1000
	DefaultPoolMaxStreams    = 100
	DefaultDrainTimeout      = 30 * time.Second
)

// Limits tunes one HTTP/2 connection. The zero value of every field means
// its default. A Limits is read, never modified, by this package.
type Limits struct {
	// MaxConcurrentStreams is the SETTINGS_MAX_CONCURRENT_STREAMS a server
	// advertises and enforces per connection (default 1000). Clients use
	// PoolConfig.MaxStreamsPerConn instead.
	MaxConcurrentStreams uint32
	// StreamWindow is the receive window of each stream (default 4 MiB).
	StreamWindow uint32
	// ConnWindow is the receive window of the connection (default 16 MiB).
	ConnWindow uint32
	// ConnReadAhead is how many received bytes, buffered for streams whose
	// readers have not read them yet, the connection window is reopened
	// for before they are read (default 32 MiB). Each stream's own window
	// bounds what it buffers, so without read-ahead a few streams whose
	// readers stall (ConnWindow / StreamWindow of them) would close the
	// connection window and stall every other stream of the connection;
	// with it, that takes (ConnReadAhead + ConnWindow) / StreamWindow
	// stalled streams (12 by default), and a connection never buffers
	// more than ConnReadAhead + ConnWindow. Negative disables it.
	ConnReadAhead int64
	// MaxFrameSize is the largest frame this side accepts (default 1 MiB).
	// Frames sent are capped by the peer's own setting.
	MaxFrameSize uint32
	// MaxHeaderListSize caps the decoded size of a header block, counted as
	// in RFC 9113 (name + value + 32 per field; default 16 KiB).
	MaxHeaderListSize uint32
	// PingInterval is how long the connection may be silent before a PING
	// is sent (default 10 s); PingTimeout is how long it may be silent
	// before it is closed as dead (default 20 s).
	PingInterval, PingTimeout time.Duration
	// IdleTimeout closes a connection that carried no stream for this long
	// (server default 10 min; the pool uses PoolConfig.IdleTimeout).
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake and the HTTP/2 preface and
	// first SETTINGS exchange (default 10 s).
	HandshakeTimeout time.Duration
}

func (l Limits) withDefaults(server bool) Limits {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxConcurrentStreams, DefaultServerMaxStreams)
	def(&l.StreamWindow, DefaultStreamWindow)
	def(&l.ConnWindow, DefaultConnWindow)
	def(&l.MaxFrameSize, DefaultMaxFrameSize)
	def(&l.MaxHeaderListSize, DefaultMaxHeaderListSize)
	switch {
	case l.ConnReadAhead == 0:
		l.ConnReadAhead = DefaultConnReadAhead
	case l.ConnReadAhead < 0:
		l.ConnReadAhead = 0
	}
	defd(&l.PingInterval, DefaultPingInterval)
	defd(&l.PingTimeout, DefaultPingTimeout)
	defd(&l.HandshakeTimeout, DefaultHandshakeTimeout)
	if server {
		defd(&l.IdleTimeout, DefaultServerIdleTimeout)
	}
	l.StreamWindow = min(l.StreamWindow, maxWindow)
	l.ConnWindow = min(max(l.ConnWindow, defaultWindow), maxWindow)
	l.MaxFrameSize = min(max(l.MaxFrameSize, minMaxFrameSize), maxMaxFrameSize)
	return l
}
