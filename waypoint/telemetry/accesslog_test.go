package telemetry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleRequest() *Request {
	return &Request{
		Start: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC),
		Labels: Labels{
			Source:             Peer{Workload: "client", Namespace: "demo", Principal: "spiffe://cluster.local/ns/demo/sa/client"},
			Destination:        Peer{Workload: "echo-v1", Namespace: "demo", Principal: "spiffe://cluster.local/ns/demo/sa/echo"},
			DestinationService: "echo.demo.svc.cluster.local", RequestProtocol: "grpc", ResponseFlags: "URX",
		},
		Method: "POST", Path: "/a/\"quoted\"\\back\x01\u2028\xff", Authority: "echo:80", UserAgent: "ua <&>\ttab",
		RequestID: "rid", Protocol: "HTTP/2.0", Route: "HTTPRoute/demo/echo/0",
		Upstream: netip.MustParseAddrPort("[fd00::1]:8080"), Attempts: 2, Code: 503, GRPCStatus: "14",
		RequestBytes: 123, ResponseBytes: 456, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Policy: "ns/p",
		Err: errors.New("upstream \"reset\"\n"),
	}
}

// decode reads one JSON line, dropping the record's own time.
func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if bytes.Count(b, []byte("\n")) != 1 || b[len(b)-1] != '\n' {
		t.Fatalf("not one line: %q", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
		t.Errorf("time %q: %v", m["time"], err)
	}
	delete(m, "time")
	return m
}

// TestJSONAccessLogMatchesSlog checks that the hand-encoded records carry
// exactly what the slog JSON handler wrote for the same request and
// connection, special characters included.
func TestJSONAccessLogMatchesSlog(t *testing.T) {
	var fast, slow bytes.Buffer
	j := NewJSONAccessLog(&fast, "access", nil, 0)
	s := SlogAccessLog{Logger: slog.New(slog.NewJSONHandler(&slow, nil)).With("component", "access")}
	q := sampleRequest()
	j.Request(q, 42*time.Millisecond)
	s.Request(q, 42*time.Millisecond)
	if diff := cmp.Diff(decode(t, slow.Bytes()), decode(t, fast.Bytes())); diff != "" {
		t.Errorf("request record (-slog +json):\n%s", diff)
	}
	fast.Reset()
	slow.Reset()
	c := &Conn{Start: q.Start, Labels: q.Labels, Src: netip.MustParseAddrPort("10.0.0.1:5000"),
		Dst: netip.MustParseAddrPort("10.0.1.1:80"), Sent: 10, Received: 20, Err: errors.New("eof")}
	j.Conn(c, time.Second)
	s.Conn(c, time.Second)
	if diff := cmp.Diff(decode(t, slow.Bytes()), decode(t, fast.Bytes())); diff != "" {
		t.Errorf("connection record (-slog +json):\n%s", diff)
	}
}

func TestJSONAccessLogDisabled(t *testing.T) {
	var buf bytes.Buffer
	NewJSONAccessLog(&buf, "access", func() bool { return false }, 0).Request(sampleRequest(), time.Millisecond)
	if buf.Len() != 0 {
		t.Errorf("disabled access log wrote %q", buf.String())
	}
}

func TestJSONAccessLogAllocs(t *testing.T) {
	j := NewJSONAccessLog(io.Discard, "access", nil, 0)
	q := sampleRequest()
	q.Err = nil
	if n := testing.AllocsPerRun(100, func() { j.Request(q, time.Millisecond) }); n > 0 {
		t.Errorf("JSONAccessLog.Request allocates %.0f times per record, want 0", n)
	}
}

// BenchmarkAccessLog compares one request's record through the slog JSON
// handler (the baseline) with the hand encoder.
func BenchmarkAccessLog(b *testing.B) {
	q := sampleRequest()
	q.Err = nil
	b.Run("slog", func(b *testing.B) {
		s := SlogAccessLog{Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
		b.ReportAllocs()
		for b.Loop() {
			s.Request(q, time.Millisecond)
		}
	})
	b.Run("json", func(b *testing.B) {
		j := NewJSONAccessLog(io.Discard, "access", nil, 0)
		b.ReportAllocs()
		for b.Loop() {
			j.Request(q, time.Millisecond)
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("q\"b\\c\n\x00\x1f\u2028\u2029\xff\xfe<&>é")
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q encoded to invalid JSON %q: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("%q round-trips to %q, encoding/json to %q", s, back, wantBack)
		}
	})
}

// lockedBuffer is a bytes.Buffer safe for the flush timer's goroutine.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) state() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestJSONAccessLogBuffered(t *testing.T) {
	var out lockedBuffer
	a := NewJSONAccessLog(&out, "access", nil, 20*time.Millisecond)
	q := sampleRequest()
	for range 3 {
		a.Request(q, time.Millisecond)
	}
	if s, _ := out.state(); s != "" {
		t.Fatalf("records written before the flush interval: %q", s)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, writes := out.state()
		if strings.Count(s, "\n") == 3 {
			if writes != 1 {
				t.Errorf("3 records took %d writes, want 1", writes)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not flushed after the interval: %q", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Pending records are written on Close, and later ones at once.
	a.Request(q, time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.Request(q, time.Millisecond)
	if s, _ := out.state(); strings.Count(s, "\n") != 5 {
		t.Errorf("after Close: %d records, want 5", strings.Count(s, "\n"))
	}
	_ = a.Close()
}
