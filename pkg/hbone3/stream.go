package hbone3

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// Application error codes this package sends when it cancels a stream
// (RFC 9114 section 8.1).
const (
	codeNoError       quic.StreamErrorCode = 0x100 // H3_NO_ERROR
	codeRequestCancel quic.StreamErrorCode = 0x10c // H3_REQUEST_CANCELLED
)

// rawStream is what quic-go's server-side http3.Stream and client-side
// http3.RequestStream have in common: DATA-framed bytes both ways and
// HTTP datagrams bound to the request.
type rawStream interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	Close() error // closes the send direction only
	CancelRead(quic.StreamErrorCode)
	CancelWrite(quic.StreamErrorCode)
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
	SetDeadline(time.Time) error
	SendDatagram([]byte) error
	ReceiveDatagram(context.Context) ([]byte, error)
}

// Stream is one CONNECT tunnel over HTTP/3. It implements net.Conn with
// TCP's half-close, like hbone.Stream: CloseWrite sends FIN (the peer reads
// io.EOF) and Close ends both directions.
type Stream struct {
	str           rawStream
	local, remote net.Addr
	peerID        string
	// done releases the stream's slot in its connection; nil on the
	// server side.
	done      func()
	closeOnce sync.Once
}

var _ net.Conn = (*Stream)(nil)

func newStream(str rawStream, local, remote net.Addr, peerID string, done func()) *Stream {
	return &Stream{str: str, local: local, remote: remote, peerID: peerID, done: done}
}

// Read reads tunnelled bytes; it returns io.EOF after the peer's FIN.
func (s *Stream) Read(p []byte) (int, error) { return s.str.Read(p) }

// Write writes tunnelled bytes.
func (s *Stream) Write(p []byte) (int, error) { return s.str.Write(p) }

// CloseWrite sends FIN: the peer reads io.EOF after the bytes written so
// far. Reading continues.
func (s *Stream) CloseWrite() error { return s.str.Close() }

// Close ends the stream in both directions. Bytes not yet read are
// discarded and the peer's further writes are refused. It is idempotent.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.str.CancelRead(codeNoError)
		_ = s.str.Close()
		if s.done != nil {
			s.done()
		}
	})
	return nil
}

// Abort resets both directions, so the peer sees an error rather than a
// clean end of stream.
func (s *Stream) Abort() {
	s.str.CancelWrite(codeRequestCancel)
	s.str.CancelRead(codeRequestCancel)
	_ = s.Close()
}

// PeerIdentity returns the verified SPIFFE identity of the other end.
func (s *Stream) PeerIdentity() string { return s.peerID }

// LocalAddr returns the local address of the QUIC connection.
func (s *Stream) LocalAddr() net.Addr { return s.local }

// RemoteAddr returns the remote address of the QUIC connection.
func (s *Stream) RemoteAddr() net.Addr { return s.remote }

// SetDeadline sets the read and write deadlines.
func (s *Stream) SetDeadline(t time.Time) error { return s.str.SetDeadline(t) }

// SetReadDeadline sets the read deadline.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.str.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.str.SetWriteDeadline(t) }
