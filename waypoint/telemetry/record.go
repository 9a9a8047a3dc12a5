package telemetry

import (
	"net/netip"
	"time"
)

// Recorder turns finished requests and connections into metrics and
// access-log records. It is safe for concurrent use.
type Recorder struct {
	metrics *Metrics
	access  AccessLogger // nil: no access log
	now     func() time.Time
}

// NewRecorder returns a Recorder writing to m and to access (nil: no
// access log).
func NewRecorder(m *Metrics, access AccessLogger) *Recorder {
	return &Recorder{metrics: m, access: access, now: time.Now}
}

// Request is one HTTP request's telemetry, filled in as it is served.
type Request struct {
	Start  time.Time
	Labels Labels
	// Method, Path, Authority, UserAgent, RequestID and Protocol describe
	// the request as received ("HTTP/1.1", "HTTP/2.0").
	Method, Path, Authority, UserAgent, RequestID, Protocol string
	// Route is the matched route's name; Upstream the endpoint used.
	Route    string
	Upstream netip.AddrPort
	// Attempts counts upstream tries (1 + retries).
	Attempts int
	// Code is the status answered; GRPCStatus the grpc-status (or "").
	Code       int
	GRPCStatus string
	// RequestBytes and ResponseBytes count headers and body.
	RequestBytes, ResponseBytes int64
	// TraceID is the request's W3C trace id.
	TraceID string
	// Policy is the deciding authorization policy, if any.
	Policy string
	// Err is why the request failed, for the access log.
	Err error
}

// StartRequest returns a Request starting now.
func (r *Recorder) StartRequest(l Labels) *Request { return &Request{Start: r.now(), Labels: l} }

// Begin resets q to a Request with labels l starting now, for a caller
// that holds the Request in memory of its own.
func (r *Recorder) Begin(q *Request, l Labels) { *q = Request{Start: r.now(), Labels: l} }

// Done records q: metrics, then one access-log record.
func (r *Recorder) Done(q *Request) {
	d := r.now().Sub(q.Start)
	s := r.metrics.series(q.Labels, q.Code, q.GRPCStatus)
	s.requests.Inc()
	s.duration.Observe(float64(d) / float64(time.Millisecond))
	s.reqBytes.Observe(float64(q.RequestBytes))
	s.respBytes.Observe(float64(q.ResponseBytes))

	if r.access != nil {
		r.access.Request(q, d)
	}
}

// Conn is one TCP connection's telemetry.
type Conn struct {
	Start          time.Time
	Labels         Labels
	Src, Dst       netip.AddrPort
	Sent, Received int64
	Err            error
	opened         bool
	r              *Recorder
}

// StartConn returns a Conn starting now.
func (r *Recorder) StartConn(l Labels) *Conn {
	l.RequestProtocol = "tcp"
	return &Conn{Start: r.now(), Labels: l, r: r}
}

// Opened counts the connection as opened (it reached its upstream).
func (c *Conn) Opened() {
	c.opened = true
	c.r.metrics.tcpOpened.WithLabelValues(c.Labels.values()...).Inc()
}

// Closed records the connection's end: counters, then one access-log
// record.
func (c *Conn) Closed() {
	vals := c.Labels.values()
	if c.opened {
		c.r.metrics.tcpClosed.WithLabelValues(vals...).Inc()
	}
	c.r.metrics.tcpSent.WithLabelValues(vals...).Add(float64(c.Sent))
	c.r.metrics.tcpReceived.WithLabelValues(vals...).Add(float64(c.Received))
	if c.r.access != nil {
		c.r.access.Conn(c, c.r.now().Sub(c.Start))
	}
}

func flagsOf(f string) string {
	if f == "" {
		return "-"
	}
	return f
}
