package httpproxy

import (
	"bufio"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1Writer is the http.ResponseWriter of the HTTP/1.1 loop (serveH1). It
// holds the status, headers and up to h1Pending bytes of body until the
// handler flushes, writes more, or returns: a response complete by then
// gets a Content-Length and leaves in one write; a longer or flushed one
// is chunked (unless the handler set a Content-Length), with trailers
// (declared in "Trailer" or set with http.TrailerPrefix) after its last
// chunk. HEAD, 1xx, 204 and 304 responses carry no body. It is reused
// across the requests of a connection and is not safe for concurrent
// use, as no ResponseWriter is.
type h1Writer struct {
	bw     *bufio.Writer
	header http.Header

	req         *http.Request
	status      int
	wroteHeader bool
	committed   bool
	noBody      bool // HEAD, or a status without a body
	chunked     bool
	length      int64 // declared Content-Length, or -1
	written     int64
	pending     []byte
	closeAfter  bool
	err         error
}

// h1Pending is how much body the writer holds before it sends the head.
const h1Pending = 4 << 10

var (
	_ http.ResponseWriter = (*h1Writer)(nil)
	_ http.Flusher        = (*h1Writer)(nil)
)

func (w *h1Writer) reset(r *http.Request) {
	clear(w.header)
	w.req, w.status, w.wroteHeader, w.committed, w.noBody, w.chunked = r, 0, false, false, false, false
	w.length, w.written, w.pending, w.closeAfter, w.err = -1, 0, w.pending[:0], r.Close, nil
}

func (w *h1Writer) Header() http.Header { return w.header }

// The bufio.Writer's errors are sticky: a write that fails makes every
// later write and Flush fail too, so the head's writes are not checked one
// by one; writeBody and the Flush in FlushError and finish record the
// first error in w.err, and serveOne closes the connection on it.

func (w *h1Writer) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// An informational response leaves now; the final one follows.
		_, _ = w.bw.WriteString("HTTP/1.1 ")
		_, _ = w.bw.WriteString(strconv.Itoa(code))
		_, _ = w.bw.WriteString(" ")
		_, _ = w.bw.WriteString(http.StatusText(code))
		_, _ = w.bw.WriteString("\r\n")
		writeHeaderLines(w.bw, w.header, nil)
		_, _ = w.bw.WriteString("\r\n")
		w.err = w.bw.Flush()
		return
	}
	if code < 100 || code > 999 {
		panic("httpproxy: invalid WriteHeader code " + strconv.Itoa(code))
	}
	w.wroteHeader, w.status = true, code
	w.noBody = w.req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified ||
		code == http.StatusSwitchingProtocols
	if code == http.StatusSwitchingProtocols {
		// The loop serves no upgrade: what follows a 101 is not HTTP/1.1.
		w.closeAfter = true
	}
	// The writer frames the body: a Content-Length the handler set is
	// taken only in digits and once (or repeated alike), and written so.
	if cls := w.header["Content-Length"]; len(cls) > 0 {
		n, err := strconv.ParseUint(cls[0], 10, 63)
		if err == nil && !slices.ContainsFunc(cls[1:], func(v string) bool { return v != cls[0] }) {
			w.length = int64(n)
			w.header["Content-Length"] = []string{strconv.FormatUint(n, 10)}
		} else {
			delete(w.header, "Content-Length")
		}
	}
}

func (w *h1Writer) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if len(w.pending)+len(p) <= h1Pending {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.commit(false)
	}
	w.writeBody(p)
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// Flush sends what the writer holds.
func (w *h1Writer) Flush() { _ = w.FlushError() }

// FlushError sends what the writer holds; http.ResponseController uses
// it.
func (w *h1Writer) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false)
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// Hijack is not served by the loop: requests that upgrade go to net/http.
func (w *h1Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, errHijack }

// commit writes the status line and headers, choosing the body's framing,
// then the body held so far. final says the handler has returned.
func (w *h1Writer) commit(final bool) {
	w.committed = true
	trailers := hasTrailers(w.header)
	delete(w.header, "Transfer-Encoding") // the framing chosen here is the only one
	switch {
	case w.noBody:
		if w.req.Method == http.MethodHead || w.status == http.StatusNotModified {
			break // a Content-Length the handler set describes the GET's body
		}
		w.header.Del("Content-Length")
	case w.length >= 0 && !trailers:
	case final && !trailers:
		w.length = int64(len(w.pending))
		w.header["Content-Length"] = []string{strconv.Itoa(len(w.pending))}
	default:
		w.chunked, w.length = true, -1
		w.header.Del("Content-Length")
		w.header["Transfer-Encoding"] = []string{"chunked"}
	}
	if w.closeAfter {
		w.header["Connection"] = []string{"close"}
	} else if headerHasToken(w.header, "Connection", "close") {
		w.closeAfter = true
	}
	if _, ok := w.header["Date"]; !ok {
		w.header["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
	}
	bw := w.bw
	_, _ = bw.WriteString("HTTP/1.1 ")
	_, _ = bw.WriteString(strconv.Itoa(w.status))
	_, _ = bw.WriteString(" ")
	_, _ = bw.WriteString(http.StatusText(w.status))
	_, _ = bw.WriteString("\r\n")
	writeHeaderLines(bw, w.header, nil)
	_, _ = bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		w.writeBody(w.pending)
		w.pending = w.pending[:0]
	}
}

func (w *h1Writer) writeBody(p []byte) {
	if len(p) == 0 || w.err != nil {
		return
	}
	if w.chunked {
		_, _ = w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		_, _ = w.bw.WriteString("\r\n")
		_, _ = w.bw.Write(p)
		_, w.err = w.bw.WriteString("\r\n")
		return
	}
	_, w.err = w.bw.Write(p)
}

// finish completes the response after the handler returned: the head if
// not sent, the last chunk and trailers, and a flush. A body shorter than
// its Content-Length closes the connection.
func (w *h1Writer) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true)
	}
	if w.chunked && w.err == nil {
		_, _ = w.bw.WriteString("0\r\n")
		writeTrailers(w.bw, w.header)
		_, w.err = w.bw.WriteString("\r\n")
	}
	if !w.noBody && w.length >= 0 && w.written < w.length {
		w.closeAfter = true
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
	return w.err
}

// hasTrailers reports whether h declares trailers or holds some to send.
func hasTrailers(h http.Header) bool {
	if _, ok := h["Trailer"]; ok {
		return true
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// writeHeaderLines writes h's fields but those with http.TrailerPrefix,
// each value with CR and LF replaced by spaces, as net/http writes them; a
// field whose name is not a token is left out, as net/http leaves it.
func writeHeaderLines(bw *bufio.Writer, h http.Header, only map[string]bool) {
	for k, vs := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) || (only != nil && !only[k]) || !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vs {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			if strings.ContainsAny(v, "\r\n") {
				v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			}
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
}

// writeTrailers writes the trailers: the declared fields' values and the
// fields set with http.TrailerPrefix.
func writeTrailers(bw *bufio.Writer, h http.Header) {
	var declared map[string]bool
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				if declared == nil {
					declared = map[string]bool{}
				}
				declared[k] = true
			}
		}
	}
	if declared != nil {
		writeHeaderLines(bw, h, declared)
	}
	for k, vs := range h {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			continue
		}
		for _, v := range vs {
			_, _ = bw.WriteString(name)
			_, _ = bw.WriteString(": ")
			if strings.ContainsAny(v, "\r\n") {
				v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			}
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
}
