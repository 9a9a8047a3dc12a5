// Package tcpinq reads a non-blocking TCP socket so that a reader which
// has emptied the socket's queue waits for the runtime poller instead of
// asking the kernel once more.
//
// A Go reader learns that a socket is empty from a read that fails with
// EAGAIN: one system call per burst of data that returns nothing. On a
// request/response connection that is a wasted call per message. With
// TCP_INQ (Linux 4.18) the kernel reports, with each recvmsg, how many
// bytes are still queued, and it reports a received FIN as one byte more,
// so a reader that is told zero knows it has everything, end of stream
// included. Any byte or FIN that arrives afterwards raises a new edge on
// the (edge-triggered) poller, so waiting is safe. This is how nginx skips
// the call with EPOLLRDHUP, which the Go runtime does not pass on.
//
// Reader.Read stands in for read(2) inside a syscall.RawConn.Read callback:
// after a read that left the queue empty, the next Read returns EAGAIN at
// once, the callback returns false and the poller waits. The skip is only
// safe within one RawConn.Read call: the runtime forgets the socket's
// readiness at the start of each call, so a new call that waited without
// reading could miss bytes that arrived in between. The caller thus
// handles its data inside the callback for as long as it can, and calls
// Forget before it uses the Reader in another RawConn.Read. Where the
// kernel refuses TCP_INQ (another socket type, an old kernel), Read is a
// plain read(2).
package tcpinq
