// Package hbone implements HBONE, the mesh tunnel: HTTP/2 CONNECT streams
// carried inside mutual TLS, wire-compatible with Istio ambient's ztunnel.
//
// A Server accepts mTLS connections, speaks HTTP/2, and hands every CONNECT
// stream, with the peer's verified identity and the request's :authority,
// forwarded, baggage and traceparent headers, to a Handler that answers
// 200, 401 or 503 and then splices bytes. A Pool dials and reuses client
// connections keyed as Istio keys them (source identity, destination
// identities, destination address, source IP) and opens Streams on them.
// A Stream is a net.Conn whose half-close matches TCP: CloseWrite sends
// END_STREAM (a FIN), Read returns io.EOF after the peer's END_STREAM, and
// Close or Abort on an unfinished stream sends RST_STREAM (an RST).
//
// The HTTP/2 framing is our own, CONNECT-only, on top of crypto/tls (HPACK
// comes from golang.org/x/net/http2/hpack). Reads: whoever holds a
// connection's read role parses frames and demultiplexes DATA straight into
// per-stream buffers; a stream reader that finds its buffer empty takes the
// role itself, so a lone active stream reads the socket with no goroutine
// hop, and a background loop takes the role only when nobody else reads
// (see readrole.go). DATA for a stream being copied to a TCP connection
// (WriteTo while it waits, or SpliceTo) is written to that socket by the
// reader itself when the socket takes it without blocking, so a message
// wakes no other goroutine, and a spliced stream needs no goroutine of its
// own (sink.go, splice.go). Writes are combined by whichever goroutine finds the
// connection idle, so a lone writer reaches the socket without a hop while
// concurrent writers are batched into large TLS writes. A write that spans
// several TLS records leaves in one system call (cork.go), and a large DATA
// payload goes to TLS from the writer's buffer with only the part filling
// its header's record copied. Socket reads and writes under TLS and into
// spliced TCP connections are made without the runtime's system-call
// bookkeeping (rawio_unix.go), so a burst of traffic after an idle spell
// does not wake the runtime's sysmon thread. Windows are large (stream
// 4 MiB, connection 16 MiB) and frames up to 1 MiB are accepted; frames
// sent never exceed what the peer's SETTINGS allow (16 KiB until it says
// otherwise). Choosing this over x/net/http2's Framer was done by
// measurement; see the benchmarks in this package (bench_test.go).
package hbone
