package telemetry

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"strings"
)

// TraceContext is a W3C traceparent (version 00).
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// ParseTraceparent parses a version-00 traceparent header
// ("00-<32 hex>-<16 hex>-<2 hex>"); higher versions are read by the same
// prefix, as the spec asks. All-zero ids are invalid.
func ParseTraceparent(s string) (TraceContext, bool) {
	var tc TraceContext
	s = strings.TrimSpace(s)
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || (len(s) > 55 && s[55] != '-') {
		return tc, false
	}
	ver := s[:2]
	if !isLowerHex(ver) || ver == "ff" || (ver == "00" && len(s) != 55) {
		return tc, false
	}
	var flags [1]byte
	if !decodeHex(tc.TraceID[:], s[3:35]) || !decodeHex(tc.SpanID[:], s[36:52]) || !decodeHex(flags[:], s[53:55]) {
		return tc, false
	}
	tc.Flags = flags[0]
	if tc.TraceID == ([16]byte{}) || tc.SpanID == ([8]byte{}) {
		return tc, false
	}
	return tc, true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func decodeHex(dst []byte, s string) bool {
	if !isLowerHex(s) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// String formats tc as a version-00 traceparent.
func (tc TraceContext) String() string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:35], tc.TraceID[:])
	b[35] = '-'
	hex.Encode(b[36:52], tc.SpanID[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{tc.Flags})
	return string(b[:])
}

// TraceIDString returns the trace id in hex.
func (tc TraceContext) TraceIDString() string { return hex.EncodeToString(tc.TraceID[:]) }

// Propagate makes the waypoint a hop of the request's trace: it replaces
// h's traceparent with one naming a new span of the same trace (a new,
// sampled trace when traceparent is absent or invalid, in which case
// tracestate is dropped as the W3C spec requires) and returns it. baggage
// and a valid tracestate pass through untouched.
func Propagate(h http.Header) TraceContext {
	tc, ok := ParseTraceparent(h.Get("Traceparent"))
	if !ok {
		h.Del("Tracestate")
		binary.LittleEndian.PutUint64(tc.TraceID[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(tc.TraceID[8:], rand.Uint64()|1)
		tc.Flags = 1
	}
	binary.LittleEndian.PutUint64(tc.SpanID[:], rand.Uint64()|1)
	h.Set("Traceparent", tc.String())
	return tc
}
