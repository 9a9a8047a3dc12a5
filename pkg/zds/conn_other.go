//go:build !linux

package zds

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
)

// ErrNotSupported is returned on systems other than Linux.
var ErrNotSupported = errors.New("zds is only supported on linux")

// NewConn wraps a connected unix socket; unusable on this system.
func NewConn(uc *net.UnixConn) *Conn { return &Conn{uc: uc, timeout: DefaultTimeout} }

// Pair is not supported on this system.
func Pair() (*Conn, *Conn, error) { return nil, nil, ErrNotSupported }

// Dial is not supported on this system.
func Dial(ctx context.Context, path string) (*Conn, error) { return nil, ErrNotSupported }

// Listen is not supported on this system.
func Listen(path string) (*Listener, error) { return nil, ErrNotSupported }

// Accept is not supported on this system.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) { return nil, ErrNotSupported }

// SendHello is not supported on this system.
func (c *Conn) SendHello(ctx context.Context, version zdsapi.Version) error { return ErrNotSupported }

// RecvHello is not supported on this system.
func (c *Conn) RecvHello(ctx context.Context) (*zdsapi.ZdsHello, error) { return nil, ErrNotSupported }

// SendRequest is not supported on this system.
func (c *Conn) SendRequest(ctx context.Context, req *zdsapi.WorkloadRequest, ns *os.File) error {
	return ErrNotSupported
}

// RecvRequest is not supported on this system.
func (c *Conn) RecvRequest(ctx context.Context) (*zdsapi.WorkloadRequest, *os.File, error) {
	return nil, nil, ErrNotSupported
}

// SendResponse is not supported on this system.
func (c *Conn) SendResponse(ctx context.Context, resp *zdsapi.WorkloadResponse) error {
	return ErrNotSupported
}

// SendAck is not supported on this system.
func (c *Conn) SendAck(ctx context.Context, err error) error { return ErrNotSupported }

// RecvResponse is not supported on this system.
func (c *Conn) RecvResponse(ctx context.Context) (*zdsapi.WorkloadResponse, error) {
	return nil, ErrNotSupported
}

// Request is not supported on this system.
func (c *Conn) Request(ctx context.Context, req *zdsapi.WorkloadRequest, ns *os.File) error {
	return ErrNotSupported
}

// IsTimeout reports whether err is a timeout; always false here.
func IsTimeout(err error) bool { return false }

// PeerClosed always reports true on this system.
func (c *Conn) PeerClosed() bool { return true }
