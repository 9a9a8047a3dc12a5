package sniff

import "bytes"

// Protocol is what a connection's first bytes say it speaks.
type Protocol int

// The outcomes of Classify.
const (
	// Unknown: more bytes are needed to decide.
	Unknown Protocol = iota
	// TCP: not HTTP; forward bytes as they are.
	TCP
	// HTTP1: an HTTP/1.0 or HTTP/1.1 request line.
	HTTP1
	// HTTP2: the HTTP/2 connection preface (prior knowledge h2c).
	HTTP2
)

// String names the protocol as telemetry reports it.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case HTTP1:
		return "http/1.1"
	case HTTP2:
		return "h2c"
	}
	return "unknown"
}

// Preface is the HTTP/2 client connection preface.
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// MaxRequestLine is the longest request line looked at; a line still valid
// at this length is taken as HTTP/1 (a long URL), as it can be nothing else.
const MaxRequestLine = 8 << 10

// maxMethod bounds the method token; real methods are short.
const maxMethod = 24

// Classify decides the protocol of a connection that began with b. It
// returns Unknown while b is a proper prefix of something that could still
// be HTTP; callers read more and call again, and treat a connection that
// ends or stalls while Unknown as TCP. It never returns Unknown for
// len(b) >= MaxRequestLine.
func Classify(b []byte) Protocol {
	if len(b) == 0 {
		return Unknown
	}
	if bytes.HasPrefix(b, []byte(Preface)) {
		return HTTP2
	}
	if len(b) < len(Preface) && bytes.HasPrefix([]byte(Preface), b) {
		return Unknown
	}
	return requestLine(b)
}

// requestLine checks b against method SP request-target SP HTTP/1.x CRLF.
func requestLine(b []byte) Protocol {
	// Method: a token.
	i := 0
	for i < len(b) && isTChar(b[i]) {
		i++
	}
	switch {
	case i > maxMethod:
		return TCP
	case i == len(b):
		if len(b) >= MaxRequestLine {
			return TCP
		}
		return Unknown
	case i == 0 || b[i] != ' ':
		return TCP
	}
	i++
	// Request target: visible ASCII, no spaces.
	start := i
	for i < len(b) && b[i] > ' ' && b[i] < 0x7f {
		i++
	}
	if i == len(b) {
		if len(b) >= MaxRequestLine {
			return HTTP1
		}
		return Unknown
	}
	if i == start || b[i] != ' ' {
		return TCP
	}
	i++
	// Version and line end.
	rest := b[i:]
	for _, v := range []string{"HTTP/1.1\r\n", "HTTP/1.0\r\n", "HTTP/1.1\n", "HTTP/1.0\n"} {
		if bytes.HasPrefix(rest, []byte(v)) {
			return HTTP1
		}
		if len(rest) < len(v) && bytes.HasPrefix([]byte(v), rest) {
			return Unknown
		}
	}
	return TCP
}

// isTChar reports RFC 9110 token characters.
func isTChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}
