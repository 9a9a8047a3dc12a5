package httpproxy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/weftmesh/weft/waypoint/telemetry"
)

// localReply answers a request the waypoint decides itself. Bodies are
// Envoy's wording and name nothing internal.
func localReply(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// timeoutReply answers a request whose time ran out: 504 when its deadline
// passed, nothing when the client went away.
func timeoutReply(w http.ResponseWriter, rec *telemetry.Request, ctx context.Context) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		rec.Labels.ResponseFlags = "UT"
		localReply(w, http.StatusGatewayTimeout, "upstream request timeout")
		return
	}
	rec.Labels.ResponseFlags = "DC"
	rec.Err = ctx.Err()
}

// countingWriter counts the response body and remembers the status.
type countingWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// status is the status answered; a request that got no answer (the client
// left) is 0 as in Envoy's access log.
func (w *countingWriter) status() int { return w.code }

// countingBody counts the request body read.
type countingBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// headerSize approximates a header block's size as HTTP/1 would send it.
func headerSize(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// hopByHop are the headers a proxy must not forward (RFC 9110 7.6.1);
// "te: trailers" is kept for gRPC.
var hopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !strings.EqualFold(tok, "te") {
				h.Del(tok)
			}
		}
	}
	for _, k := range hopByHop {
		h.Del(k)
	}
	if te := h.Get("Te"); te != "" && !strings.EqualFold(strings.TrimSpace(te), "trailers") {
		h.Del("Te")
	}
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// newRequestID returns a random UUID (version 4), as Envoy's x-request-id.
// Its bits come from math/rand/v2's generator (ChaCha8, seeded by the
// runtime from the system's entropy): an id must be unique, not secret,
// and crypto/rand costs a getrandom(2) system call per request.
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
