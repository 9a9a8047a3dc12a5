package telemetry

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// AccessLogger writes one access-log record per finished request or TCP
// connection. Implementations are safe for concurrent use.
type AccessLogger interface {
	// Request logs q, which took d.
	Request(q *Request, d time.Duration)
	// Conn logs c, which lasted d.
	Conn(c *Conn, d time.Duration)
}

var (
	_ AccessLogger = (*JSONAccessLog)(nil)
	_ AccessLogger = SlogAccessLog{}
)

// JSONAccessLog encodes records as JSON lines by appending to a pooled
// buffer (no reflection, no maps, no per-attribute allocation). A record
// has the fields of the slog JSON handler's records (time, level, msg,
// component) followed by the record's own.
//
// With a flush interval, records are gathered and written together (as
// Envoy buffers its access log): when 32 KiB are pending, else at most the
// interval after the first pending record, and on Flush and Close; a
// record is always written whole. Without one, each record is one Write.
type JSONAccessLog struct {
	out       io.Writer
	enabled   func() bool
	component string
	every     time.Duration
	now       func() time.Time

	mu      sync.Mutex // guards the fields below and serialises writes to out
	pending []byte
	timer   *time.Timer // armed while records are pending
	armed   bool
	closed  bool
}

// pendingMax is how much a buffered JSONAccessLog gathers before writing.
const pendingMax = 32 << 10

// NewJSONAccessLog returns a JSONAccessLog writing to out with
// component=component. enabled, when not nil, is asked before each record
// (a log level switched at run time); nil logs every record. flushEvery
// bounds how long a record may wait to be written; 0 writes each at once.
// Close a buffered log to write what is pending.
func NewJSONAccessLog(out io.Writer, component string, enabled func() bool, flushEvery time.Duration) *JSONAccessLog {
	return &JSONAccessLog{out: out, enabled: enabled, component: component, every: flushEvery, now: time.Now}
}

var recordBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (a *JSONAccessLog) begin(msg string) (*[]byte, []byte) {
	bp := recordBuffers.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = a.now().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":`...)
	b = appendJSONString(b, msg)
	b = appendStr(b, "component", a.component)
	return bp, b
}

func (a *JSONAccessLog) end(bp *[]byte, b []byte) {
	b = append(b, "}\n"...)
	a.mu.Lock()
	if a.every <= 0 || a.closed {
		_, _ = a.out.Write(b)
	} else {
		a.pending = append(a.pending, b...)
		switch {
		case len(a.pending) >= pendingMax:
			a.flushLocked()
		case !a.armed:
			a.armed = true
			if a.timer == nil {
				a.timer = time.AfterFunc(a.every, a.Flush)
			} else {
				a.timer.Reset(a.every)
			}
		}
	}
	a.mu.Unlock()
	if cap(b) <= 64<<10 {
		*bp = b
		recordBuffers.Put(bp)
	}
}

// Flush writes the pending records.
func (a *JSONAccessLog) Flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushLocked()
	a.armed = false
}

func (a *JSONAccessLog) flushLocked() {
	if len(a.pending) > 0 {
		_, _ = a.out.Write(a.pending)
		a.pending = a.pending[:0]
	}
}

// Close writes the pending records; later records are written at once.
// It is idempotent.
func (a *JSONAccessLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushLocked()
	a.closed = true
	if a.timer != nil {
		a.timer.Stop()
	}
	return nil
}

// Request logs q.
func (a *JSONAccessLog) Request(q *Request, d time.Duration) {
	if a.enabled != nil && !a.enabled() {
		return
	}
	bp, b := a.begin("request complete")
	b = append(b, `,"start_time":"`...)
	b = q.Start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendStr(b, "method", q.Method)
	b = appendStr(b, "path", q.Path)
	b = appendStr(b, "protocol", q.Protocol)
	b = appendInt(b, "response_code", int64(q.Code))
	b = appendStr(b, "response_flags", flagsOf(q.Labels.ResponseFlags))
	b = appendInt(b, "bytes_received", q.RequestBytes)
	b = appendInt(b, "bytes_sent", q.ResponseBytes)
	b = appendInt(b, "duration", d.Milliseconds())
	b = appendStr(b, "authority", q.Authority)
	b = appendStr(b, "route_name", q.Route)
	b = appendStr(b, "user_agent", q.UserAgent)
	b = appendStr(b, "request_id", q.RequestID)
	b = appendStr(b, "trace_id", q.TraceID)
	b = appendInt(b, "attempts", int64(q.Attempts))
	l := &q.Labels
	b = append(b, `,"src":{"workload":`...)
	b = appendJSONString(b, l.Source.Workload)
	b = appendStr(b, "namespace", l.Source.Namespace)
	b = appendStr(b, "identity", l.Source.Principal)
	b = append(b, `},"dst":{"service":`...)
	b = appendJSONString(b, l.DestinationService)
	b = appendStr(b, "workload", l.Destination.Workload)
	b = appendStr(b, "namespace", l.Destination.Namespace)
	b = appendStr(b, "identity", l.Destination.Principal)
	b = append(b, '}')
	if q.Upstream.IsValid() {
		b = append(b, `,"upstream_host":"`...)
		b = q.Upstream.AppendTo(b)
		b = append(b, '"')
	}
	if q.GRPCStatus != "" {
		b = appendStr(b, "grpc_status", q.GRPCStatus)
	}
	if q.Policy != "" {
		b = appendStr(b, "policy", q.Policy)
	}
	if q.Err != nil {
		b = appendStr(b, "error", q.Err.Error())
	}
	a.end(bp, b)
}

// Conn logs c.
func (a *JSONAccessLog) Conn(c *Conn, d time.Duration) {
	if a.enabled != nil && !a.enabled() {
		return
	}
	bp, b := a.begin("connection complete")
	b = append(b, `,"start_time":"`...)
	b = c.Start.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","src.addr":"`...)
	b = c.Src.AppendTo(b)
	b = append(b, `","dst.addr":"`...)
	b = c.Dst.AppendTo(b)
	b = append(b, '"')
	b = appendStr(b, "src.identity", c.Labels.Source.Principal)
	b = appendStr(b, "dst.service", c.Labels.DestinationService)
	b = appendStr(b, "dst.workload", c.Labels.Destination.Workload)
	b = appendStr(b, "dst.identity", c.Labels.Destination.Principal)
	b = appendStr(b, "direction", "inbound")
	b = appendStr(b, "response_flags", flagsOf(c.Labels.ResponseFlags))
	b = appendInt(b, "bytes_sent", c.Sent)
	b = appendInt(b, "bytes_recv", c.Received)
	b = appendInt(b, "duration", d.Milliseconds())
	if c.Err != nil {
		b = appendStr(b, "error", c.Err.Error())
	}
	a.end(bp, b)
}

// appendStr appends ,"key":"value"; keys are constants needing no escape.
func appendStr(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendJSONString(b, v)
}

func appendInt(b []byte, key string, v int64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, v, 10)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, U+2028 and U+2029 escaped (as encoding/json
// does), and each byte of invalid UTF-8 replaced by U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// SlogAccessLog writes records through a slog.Logger, in whatever format
// its handler has (the text format, for a terminal). It costs a slog
// record and its attributes per request; JSONAccessLog is the fast path.
type SlogAccessLog struct{ Logger *slog.Logger }

// Request logs q.
func (s SlogAccessLog) Request(q *Request, d time.Duration) {
	if !s.Logger.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
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
	s.Logger.LogAttrs(context.Background(), slog.LevelInfo, "request complete", attrs...)
}

// Conn logs c.
func (s SlogAccessLog) Conn(c *Conn, d time.Duration) {
	if !s.Logger.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.Time("start_time", c.Start), slog.String("src.addr", c.Src.String()), slog.String("dst.addr", c.Dst.String()),
		slog.String("src.identity", c.Labels.Source.Principal), slog.String("dst.service", c.Labels.DestinationService),
		slog.String("dst.workload", c.Labels.Destination.Workload), slog.String("dst.identity", c.Labels.Destination.Principal),
		slog.String("direction", "inbound"), slog.String("response_flags", flagsOf(c.Labels.ResponseFlags)),
		slog.Int64("bytes_sent", c.Sent), slog.Int64("bytes_recv", c.Received),
		slog.Int64("duration", d.Milliseconds()),
	}
	if c.Err != nil {
		attrs = append(attrs, slog.String("error", c.Err.Error()))
	}
	s.Logger.LogAttrs(context.Background(), slog.LevelInfo, "connection complete", attrs...)
}
