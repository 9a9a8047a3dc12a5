package zds

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
)

// MaxMessageSize is the largest packet accepted. Real messages are a few
// hundred bytes; anything larger is a protocol error.
const MaxMessageSize = 64 << 10

// ErrInvalidMessage marks a packet that is not a valid ZDS message in the
// position it was received (undecodable, empty, or with the wrong number
// of file descriptors).
var ErrInvalidMessage = errors.New("invalid zds message")

// AckError is the error ztunnel reported in a WorkloadResponse ack.
type AckError struct {
	Message string
}

func (e *AckError) Error() string { return "ztunnel rejected request: " + e.Message }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidMessage, fmt.Sprintf(format, args...))
}

// validateRequest checks that req is well formed and carries the right
// number of file descriptors: one for an add, none otherwise.
func validateRequest(req *zdsapi.WorkloadRequest, nfds int) error {
	wantFDs := 0
	switch p := req.GetPayload().(type) {
	case *zdsapi.WorkloadRequest_Add:
		if p.Add.GetUid() == "" {
			return invalid("add without uid")
		}
		wantFDs = 1
	case *zdsapi.WorkloadRequest_Keep:
		if p.Keep.GetUid() == "" {
			return invalid("keep without uid")
		}
	case *zdsapi.WorkloadRequest_Del:
		if p.Del.GetUid() == "" {
			return invalid("del without uid")
		}
	case *zdsapi.WorkloadRequest_SnapshotSent:
	case nil:
		return invalid("request without payload")
	default:
		return invalid("unknown request payload %T", p)
	}
	if nfds != wantFDs {
		return invalid("%s carries %d file descriptors, want %d", RequestKind(req), nfds, wantFDs)
	}
	return nil
}

// RequestKind names the payload of req for logs: add, keep, del,
// snapshot_sent or empty.
func RequestKind(req *zdsapi.WorkloadRequest) string {
	switch req.GetPayload().(type) {
	case *zdsapi.WorkloadRequest_Add:
		return "add"
	case *zdsapi.WorkloadRequest_Keep:
		return "keep"
	case *zdsapi.WorkloadRequest_Del:
		return "del"
	case *zdsapi.WorkloadRequest_SnapshotSent:
		return "snapshot_sent"
	default:
		return "empty"
	}
}

// DecodeRequest parses one request packet that arrived with nfds file
// descriptors and validates it.
func DecodeRequest(b []byte, nfds int) (*zdsapi.WorkloadRequest, error) {
	if len(b) > MaxMessageSize {
		return nil, invalid("request of %d bytes exceeds %d", len(b), MaxMessageSize)
	}
	req := &zdsapi.WorkloadRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		return nil, invalid("decode request: %v", err)
	}
	if err := validateRequest(req, nfds); err != nil {
		return nil, err
	}
	return req, nil
}

// DecodeResponse parses one response packet; it must hold an ack.
func DecodeResponse(b []byte) (*zdsapi.WorkloadResponse, error) {
	if len(b) > MaxMessageSize {
		return nil, invalid("response of %d bytes exceeds %d", len(b), MaxMessageSize)
	}
	resp := &zdsapi.WorkloadResponse{}
	if err := proto.Unmarshal(b, resp); err != nil {
		return nil, invalid("decode response: %v", err)
	}
	if resp.GetAck() == nil {
		return nil, invalid("response without ack")
	}
	return resp, nil
}

// DecodeHello parses ztunnel's hello; only protocol version V1 is
// accepted.
func DecodeHello(b []byte) (*zdsapi.ZdsHello, error) {
	if len(b) > MaxMessageSize {
		return nil, invalid("hello of %d bytes exceeds %d", len(b), MaxMessageSize)
	}
	h := &zdsapi.ZdsHello{}
	if err := proto.Unmarshal(b, h); err != nil {
		return nil, invalid("decode hello: %v", err)
	}
	if h.GetVersion() != zdsapi.Version_V1 {
		return nil, invalid("unsupported zds version %v", h.GetVersion())
	}
	return h, nil
}
