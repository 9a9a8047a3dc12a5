package telemetry

import (
	"context"
	"log/slog"
	"net/netip"
	"time"
)

// Recorder turns finished requests and connections into metrics and
// access-log records. It is safe for concurrent use.
type Recorder struct {
	metrics *Metrics
	access  *slog.Logger
	now     func() time.Time
}

// NewRecorder returns a Recorder writing to m and to the access logger
// (nil discards access logs).
func NewRecorder(m *Metrics, access *slog.Logger) *Recorder {
	if access == nil {
		access = slog.New(slog.DiscardHandler)
	}
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

// Done records q: metrics, then one access-log record.
func (r *Recorder) Done(q *Request) {
	d := r.now().Sub(q.Start)
	s := r.metrics.series(q.Labels, q.Code, q.GRPCStatus)
	s.requests.Inc()
	s.duration.Observe(float64(d) / float64(time.Millisecond))
	s.reqBytes.Observe(float64(q.RequestBytes))
	s.respBytes.Observe(float64(q.ResponseBytes))

	attrs := []slog.Attr{
		slog.Time("start_time", q.Start), slog.String("method", q.Method), slog.String("path", q.Path),
		slog.String("protocol", q.Protocol), slog.Int("response_code", q.Code),
		slog.String("response_flags", flagsOf(q.Labels.ResponseFlags)),
		slog.Int64("bytes_received", q.RequestBytes), slog.Int64("bytes_sent", q.ResponseBytes),
		slog.Int64("duration", d.Milliseconds()), slog.String("authority", q.Authority),
		slog.String("route_name", q.Route), slog.String("user_agent", q.UserAgent),
		slog.String("request_id", q.RequestID), slog.String("trace_id", q.TraceID),
		slog.Int("attempts", q.Attempts),
		slog.Group("src", "workload", q.Labels.Source.Workload, "namespace", q.Labels.Source.Namespace,
			"identity", q.Labels.Source.Principal),
		slog.Group("dst", "service", q.Labels.DestinationService, "workload", q.Labels.Destination.Workload,
			"namespace", q.Labels.Destination.Namespace, "identity", q.Labels.Destination.Principal),
	}
	if q.Upstream.IsValid() {
		attrs = append(attrs, slog.String("upstream_host", q.Upstream.String()))
	}
	if q.GRPCStatus != "" {
		attrs = append(attrs, slog.String("grpc_status", q.GRPCStatus))
	}
	if q.Policy != "" {
		attrs = append(attrs, slog.String("policy", q.Policy))
	}
	if q.Err != nil {
		attrs = append(attrs, slog.String("error", q.Err.Error()))
	}
	r.access.LogAttrs(context.Background(), slog.LevelInfo, "request complete", attrs...)
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
	attrs := []slog.Attr{
		slog.Time("start_time", c.Start), slog.String("src.addr", c.Src.String()), slog.String("dst.addr", c.Dst.String()),
		slog.String("src.identity", c.Labels.Source.Principal), slog.String("dst.service", c.Labels.DestinationService),
		slog.String("dst.workload", c.Labels.Destination.Workload), slog.String("dst.identity", c.Labels.Destination.Principal),
		slog.String("direction", "inbound"), slog.String("response_flags", flagsOf(c.Labels.ResponseFlags)),
		slog.Int64("bytes_sent", c.Sent), slog.Int64("bytes_recv", c.Received),
		slog.Int64("duration", c.r.now().Sub(c.Start).Milliseconds()),
	}
	if c.Err != nil {
		attrs = append(attrs, slog.String("error", c.Err.Error()))
	}
	c.r.access.LogAttrs(context.Background(), slog.LevelInfo, "connection complete", attrs...)
}

func flagsOf(f string) string {
	if f == "" {
		return "-"
	}
	return f
}
