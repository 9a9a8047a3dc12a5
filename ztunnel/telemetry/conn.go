package telemetry

import (
	"context"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Recorder creates connection records; it owns the metrics, the access
// logger and the table of open connections. Safe for concurrent use; a nil
// *Recorder records nothing.
type Recorder struct {
	metrics *Metrics
	access  *slog.Logger
	nextID  atomic.Uint64
	mu      sync.Mutex
	open    map[uint64]*Conn
}

// NewRecorder returns a Recorder writing to metrics (may be nil) and the
// access logger (nil discards).
func NewRecorder(metrics *Metrics, access *slog.Logger) *Recorder {
	if access == nil {
		access = slog.New(slog.DiscardHandler)
	}
	return &Recorder{metrics: metrics, access: access, open: map[uint64]*Conn{}}
}

// Refused counts one connection refused over a connection cap (see
// Metrics.Refused). It writes no access log record: refusals come in
// floods, and the proxy logs them rate-limited instead.
func (r *Recorder) Refused(direction, reason string) {
	if r != nil {
		r.metrics.Refused(direction, reason)
	}
}

// Conn is one proxied connection's record. Set its fields before Opened;
// count bytes with AddSent/AddReceived from any goroutine; finish with
// Closed or Failed exactly once.
type Conn struct {
	r     *Recorder
	id    uint64
	start time.Time
	// The counters this connection's close updates, resolved when it
	// opens (cheaper to keep than its label values).
	closed, sentC, recvC prometheus.Counter
	sent                 atomic.Int64
	recv                 atomic.Int64

	// Direction is "outbound" or "inbound".
	Direction string
	// SrcAddr, DstAddr are the client's and the destination's addresses;
	// HBONEAddr is the tunnel endpoint when HBONE is used.
	SrcAddr, DstAddr, HBONEAddr netip.AddrPort
	// Workload is the local pod's uid (for the connection table).
	Workload string
	Labels   Labels
	Src, Dst Peer
	// Protocol is "HBONE" or "TCP".
	Protocol string
	// SrcIdentity and DstIdentity are the SPIFFE identities of the mTLS
	// (HBONE) leg this ztunnel took part in: the client's and the server's,
	// each either verified from the peer's certificate or this side's own.
	// Both are empty for plaintext.
	SrcIdentity, DstIdentity string
}

// Start creates a record; fill in its fields, then call Opened.
func (r *Recorder) Start() *Conn {
	c := &Conn{start: time.Now()}
	if r != nil {
		c.r = r
		c.id = r.nextID.Add(1)
	}
	return c
}

// Opened counts the connection as opened and lists it as open.
func (c *Conn) Opened() {
	if c.r == nil {
		return
	}
	if m := c.r.metrics; m != nil {
		lv := values(c.Labels, c.Src, c.Dst)
		m.opened.WithLabelValues(lv...).Inc()
		c.closed, c.sentC, c.recvC = m.closed.WithLabelValues(lv...), m.sent.WithLabelValues(lv...), m.received.WithLabelValues(lv...)
	}
	c.r.mu.Lock()
	c.r.open[c.id] = c
	c.r.mu.Unlock()
}

// AddSent counts n bytes sent towards the destination.
func (c *Conn) AddSent(n int64) { c.sent.Add(n) }

// AddReceived counts n bytes received from the destination.
func (c *Conn) AddReceived(n int64) { c.recv.Add(n) }

// Failed counts a connection that could not be established and logs it.
// The record must not have been Opened.
func (c *Conn) Failed(flags string, err error) {
	if c.r == nil {
		return
	}
	c.Labels.ResponseFlags = flags
	if m := c.r.metrics; m != nil {
		m.failed.WithLabelValues(values(c.Labels, c.Src, c.Dst)...).Inc()
	}
	c.log(err)
}

// Closed counts the connection as closed with its bytes, removes it from
// the open table and writes the access log record.
func (c *Conn) Closed(err error) {
	if c.r == nil {
		return
	}
	if c.closed != nil {
		c.closed.Inc()
		c.sentC.Add(float64(c.sent.Load()))
		c.recvC.Add(float64(c.recv.Load()))
	}
	c.r.mu.Lock()
	delete(c.r.open, c.id)
	c.r.mu.Unlock()
	c.log(err)
}

func addr(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (c *Conn) log(err error) {
	attrs := []slog.Attr{
		slog.Group("src", slog.String("addr", addr(c.SrcAddr)), slog.String("workload", c.Src.Workload),
			slog.String("namespace", c.Src.Namespace), slog.String("identity", c.Src.Principal)),
		slog.Group("dst", slog.String("addr", addr(c.DstAddr)), slog.String("hbone_addr", addr(c.HBONEAddr)),
			slog.String("service", c.Labels.Service), slog.String("workload", c.Dst.Workload),
			slog.String("namespace", c.Dst.Namespace), slog.String("identity", c.Dst.Principal)),
		slog.String("direction", c.Direction),
		slog.Int64("bytes_sent", c.sent.Load()),
		slog.Int64("bytes_recv", c.recv.Load()),
		slog.Duration("duration", time.Since(c.start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	c.r.access.LogAttrs(context.Background(), slog.LevelInfo, "connection complete", attrs...)
}

// ConnState is one open connection in the admin dump, in the shape of
// `istioctl ztunnel-config connections`.
type ConnState struct {
	Workload     string `json:"workload"`
	Direction    string `json:"direction"`
	Local        string `json:"local"`
	Remote       string `json:"remote"`
	RemoteTarget string `json:"remoteTarget"`
	Protocol     string `json:"protocol"`
	// SrcIdentity and DstIdentity are the SPIFFE identities of the mTLS
	// leg (empty for plaintext); see Conn.
	SrcIdentity string    `json:"srcIdentity,omitempty"`
	DstIdentity string    `json:"dstIdentity,omitempty"`
	BytesSent   int64     `json:"bytesSent"`
	BytesRecv   int64     `json:"bytesRecv"`
	Started     time.Time `json:"started"`
}

// Connections lists the open connections, oldest first.
func (r *Recorder) Connections() []ConnState {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	conns := make([]*Conn, 0, len(r.open))
	for _, c := range r.open {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	sort.Slice(conns, func(i, j int) bool { return conns[i].id < conns[j].id })
	out := make([]ConnState, 0, len(conns))
	for _, c := range conns {
		local, remote := c.SrcAddr, c.DstAddr
		if c.Direction == "inbound" {
			local, remote = c.DstAddr, c.SrcAddr
		}
		target := c.HBONEAddr
		if !target.IsValid() {
			target = c.DstAddr
		}
		out = append(out, ConnState{Workload: c.Workload, Direction: c.Direction, Local: addr(local), Remote: addr(remote),
			RemoteTarget: addr(target), Protocol: c.Protocol,
			SrcIdentity: c.SrcIdentity, DstIdentity: c.DstIdentity, BytesSent: c.sent.Load(), BytesRecv: c.recv.Load(), Started: c.start})
	}
	return out
}
