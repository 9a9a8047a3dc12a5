package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// Kind is the class of a failed attempt's error.
type Kind int

// Kinds of attempt failure.
const (
	// KindOther is any error not recognised below; it is not retried.
	KindOther Kind = iota
	// KindConnectFailure: no connection or stream to the endpoint could
	// be established, so the request never reached the backend.
	KindConnectFailure
	// KindReset: the connection or stream broke after the request was
	// sent (reset, unexpected EOF, refused stream).
	KindReset
	// KindTimeout: the attempt's per-try timeout expired. It is retried
	// like a 504 gateway error and under "reset".
	KindTimeout
)

// String returns the kind's retry_on-style name.
func (k Kind) String() string {
	switch k {
	case KindConnectFailure:
		return "connect-failure"
	case KindReset:
		return "reset"
	case KindTimeout:
		return "timeout"
	}
	return "other"
}

// ErrConnectFailure and ErrReset mark errors for Classify. The proxy wraps
// its dial errors with ConnectFailure and its stream errors with Reset,
// so classification does not depend on transport error strings.
var (
	ErrConnectFailure = errors.New("upstream connect failure")
	ErrReset          = errors.New("upstream reset")
)

// ConnectFailure wraps err so that Classify returns KindConnectFailure.
// It returns nil for a nil err.
func ConnectFailure(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConnectFailure, err)
}

// Reset wraps err so that Classify returns KindReset. It returns nil for
// a nil err.
func Reset(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrReset, err)
}

// Classify returns the Kind of an attempt's error: errors marked with
// ConnectFailure or Reset first, then context.DeadlineExceeded (a per-try
// timeout), then well-known network errors (refused or unreachable dials
// are connect failures; ECONNRESET, EPIPE and unexpected EOF are resets).
// Classify(nil) is KindOther.
func Classify(err error) Kind {
	switch {
	case err == nil:
		return KindOther
	case errors.Is(err, ErrConnectFailure):
		return KindConnectFailure
	case errors.Is(err, ErrReset):
		return KindReset
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return KindTimeout
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return KindConnectFailure
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.ErrUnexpectedEOF):
		return KindReset
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return KindConnectFailure
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return KindTimeout
	}
	return KindOther
}
