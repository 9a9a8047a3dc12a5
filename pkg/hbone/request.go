package hbone

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// Request is one CONNECT stream offered to a Handler. The handler answers
// it exactly once, with Accept (200, then splice the returned Stream) or
// Reject (401 when authorization denies, 503 when the upstream cannot be
// reached, ...). A Request is not safe for concurrent use.
type Request struct {
	// Authority is the :authority pseudo-header, "host:port": the target
	// workload address, or the original VIP:port when sent to a waypoint.
	Authority string
	// PeerIdentity is the SPIFFE URI SAN of the client's verified leaf
	// certificate, e.g. "spiffe://cluster.local/ns/a/sa/b".
	PeerIdentity string
	// PeerCertificates is the client's chain as presented, leaf first.
	PeerCertificates []*x509.Certificate
	// Forwarded, Baggage and Traceparent are the values of the headers of
	// those names ("" when absent).
	Forwarded, Baggage, Traceparent string
	// Header holds every regular header, canonicalised as by net/http.
	Header http.Header
	// LocalAddr and RemoteAddr are the addresses of the TLS connection.
	LocalAddr, RemoteAddr net.Addr

	stream   *Stream
	answered bool
}

var errAnswered = errors.New("hbone: request already answered")

// Accept answers 200 and returns the tunnel. The handler owns the Stream
// and should Close it when done; the server closes it when the handler
// returns in any case.
func (r *Request) Accept() (*Stream, error) {
	if r.answered {
		return nil, errAnswered
	}
	r.answered = true
	if err := r.stream.writeResponse(http.StatusOK, false); err != nil {
		return nil, err
	}
	return r.stream, nil
}

// Reject answers status (which must not be 2xx) and ends the stream.
func (r *Request) Reject(status int) error {
	if r.answered {
		return errAnswered
	}
	if status < 300 || status > 599 {
		return fmt.Errorf("hbone: reject with status %d: want 3xx-5xx", status)
	}
	r.answered = true
	return r.stream.reject(status)
}

// requestHead is the validated content of a CONNECT request's headers.
type requestHead struct {
	authority                       string
	forwarded, baggage, traceparent string
	header                          http.Header
}

// parseRequest validates a decoded request header list as a plain CONNECT
// (RFC 9113 section 8.5) and returns the status to answer when it is not
// acceptable: 400 for a malformed request or another method, 431 when the
// header list exceeded its limit.
func parseRequest(fields []hpack.HeaderField, tooBig bool) (requestHead, int, string) {
	var h requestHead
	if tooBig {
		return h, http.StatusRequestHeaderFieldsTooLarge, "header list too large"
	}
	var method string
	var haveMethod, haveAuthority, regular bool
	for _, f := range fields {
		if f.IsPseudo() {
			if regular {
				return h, http.StatusBadRequest, "pseudo-header after regular header"
			}
			switch f.Name {
			case ":method":
				if haveMethod {
					return h, http.StatusBadRequest, "duplicate :method"
				}
				haveMethod, method = true, f.Value
			case ":authority":
				if haveAuthority {
					return h, http.StatusBadRequest, "duplicate :authority"
				}
				haveAuthority, h.authority = true, f.Value
			case ":scheme", ":path", ":protocol":
				return h, http.StatusBadRequest, f.Name + " in a CONNECT request"
			default:
				return h, http.StatusBadRequest, "unknown pseudo-header " + strconv.Quote(f.Name)
			}
			continue
		}
		regular = true
		if !validFieldName(f.Name) {
			return h, http.StatusBadRequest, "invalid header name " + strconv.Quote(f.Name)
		}
		if !httpguts.ValidHeaderFieldValue(f.Value) {
			return h, http.StatusBadRequest, "invalid value of header " + f.Name
		}
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return h, http.StatusBadRequest, "connection-specific header " + f.Name
		case "te":
			if f.Value != "trailers" {
				return h, http.StatusBadRequest, "te other than trailers"
			}
		case "forwarded":
			h.forwarded = joinValue(h.forwarded, f.Value)
		case "baggage":
			h.baggage = joinValue(h.baggage, f.Value)
		case "traceparent":
			h.traceparent = f.Value
		}
		if h.header == nil {
			h.header = make(http.Header)
		}
		h.header.Add(f.Name, f.Value)
	}
	if !haveMethod {
		return h, http.StatusBadRequest, "missing :method"
	}
	if method != http.MethodConnect {
		return h, http.StatusBadRequest, "method " + strconv.Quote(method) + " is not CONNECT"
	}
	if err := validAuthority(h.authority); err != nil {
		return h, http.StatusBadRequest, err.Error()
	}
	return h, 0, ""
}

func joinValue(old, v string) string {
	if old == "" {
		return v
	}
	return old + ", " + v
}

// validFieldName reports whether name is a lower-case HTTP token, as HTTP/2
// requires.
func validFieldName(name string) bool {
	if !httpguts.ValidHeaderFieldName(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return true
}

// validAuthority requires "host:port" with a non-empty host and a port in
// 1-65535, and no userinfo.
func validAuthority(a string) error {
	if a == "" {
		return errors.New("missing :authority")
	}
	if strings.ContainsAny(a, "@/?# \t") {
		return fmt.Errorf("invalid :authority %q", a)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("invalid :authority %q: %w", a, err)
	}
	if host == "" {
		return fmt.Errorf("invalid :authority %q: empty host", a)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 || port[0] == '0' {
		return fmt.Errorf("invalid :authority %q: bad port", a)
	}
	return nil
}
