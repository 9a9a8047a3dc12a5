package hbone

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HTTP/2 frame types (RFC 9113 section 6).
const (
	frameData         uint8 = 0x0
	frameHeaders      uint8 = 0x1
	framePriority     uint8 = 0x2
	frameRSTStream    uint8 = 0x3
	frameSettings     uint8 = 0x4
	framePushPromise  uint8 = 0x5
	framePing         uint8 = 0x6
	frameGoAway       uint8 = 0x7
	frameWindowUpdate uint8 = 0x8
	frameContinuation uint8 = 0x9
)

// Frame flags.
const (
	flagEndStream  uint8 = 0x1
	flagAck        uint8 = 0x1
	flagEndHeaders uint8 = 0x4
	flagPadded     uint8 = 0x8
	flagPriority   uint8 = 0x20
)

// Settings identifiers.
const (
	settingHeaderTableSize      uint16 = 0x1
	settingEnablePush           uint16 = 0x2
	settingMaxConcurrentStreams uint16 = 0x3
	settingInitialWindowSize    uint16 = 0x4
	settingMaxFrameSize         uint16 = 0x5
	settingMaxHeaderListSize    uint16 = 0x6
)

// ErrCode is an HTTP/2 error code carried by RST_STREAM and GOAWAY.
type ErrCode uint32

// The error codes this package sends or interprets.
const (
	ErrCodeNo                 ErrCode = 0x0
	ErrCodeProtocol           ErrCode = 0x1
	ErrCodeInternal           ErrCode = 0x2
	ErrCodeFlowControl        ErrCode = 0x3
	ErrCodeSettingsTimeout    ErrCode = 0x4
	ErrCodeStreamClosed       ErrCode = 0x5
	ErrCodeFrameSize          ErrCode = 0x6
	ErrCodeRefusedStream      ErrCode = 0x7
	ErrCodeCancel             ErrCode = 0x8
	ErrCodeCompression        ErrCode = 0x9
	ErrCodeConnect            ErrCode = 0xa
	ErrCodeEnhanceYourCalm    ErrCode = 0xb
	ErrCodeInadequateSecurity ErrCode = 0xc
	ErrCodeHTTP11Required     ErrCode = 0xd
)

var errCodeNames = [...]string{
	"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
	"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR",
	"CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
}

// String returns the name RFC 9113 gives the code.
func (e ErrCode) String() string {
	if int(e) < len(errCodeNames) {
		return errCodeNames[e]
	}
	return fmt.Sprintf("ERR_0x%x", uint32(e))
}

const (
	frameHeaderLen   = 9
	minMaxFrameSize  = 1 << 14   // the default every peer must accept
	maxMaxFrameSize  = 1<<24 - 1 // the largest a peer may advertise
	maxWindow        = 1<<31 - 1
	defaultWindow    = 65535
	clientPreface    = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	maxSettingsCount = 64 // more identifiers than exist, per frame
)

// frameHeader is the fixed 9-byte prefix of every frame.
type frameHeader struct {
	Length   uint32
	Type     uint8
	Flags    uint8
	StreamID uint32
}

func (h frameHeader) has(f uint8) bool { return h.Flags&f != 0 }

// connError is a connection error: the connection is closed with GOAWAY.
type connError struct {
	Code   ErrCode
	Reason string
}

func (e connError) Error() string {
	return fmt.Sprintf("hbone: connection error %s: %s", e.Code, e.Reason)
}

// readFrameHeader reads a frame header into buf (at least 9 bytes) and
// parses it.
func readFrameHeader(r io.Reader, buf []byte) (frameHeader, error) {
	if _, err := io.ReadFull(r, buf[:frameHeaderLen]); err != nil {
		return frameHeader{}, err
	}
	return parseFrameHeader(buf), nil
}

func parseFrameHeader(b []byte) frameHeader {
	return frameHeader{
		Length:   uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]),
		Type:     b[3],
		Flags:    b[4],
		StreamID: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
	}
}

func appendFrameHeader(b []byte, length int, typ, flags uint8, streamID uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), typ, flags,
		byte(streamID>>24), byte(streamID>>16), byte(streamID>>8), byte(streamID))
}

func appendDataFrame(b []byte, streamID uint32, endStream bool, p []byte) []byte {
	var flags uint8
	if endStream {
		flags = flagEndStream
	}
	b = appendFrameHeader(b, len(p), frameData, flags, streamID)
	return append(b, p...)
}

func appendRSTStream(b []byte, streamID uint32, code ErrCode) []byte {
	b = appendFrameHeader(b, 4, frameRSTStream, 0, streamID)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

func appendWindowUpdate(b []byte, streamID uint32, incr uint32) []byte {
	b = appendFrameHeader(b, 4, frameWindowUpdate, 0, streamID)
	return binary.BigEndian.AppendUint32(b, incr)
}

func appendPing(b []byte, ack bool, data [8]byte) []byte {
	var flags uint8
	if ack {
		flags = flagAck
	}
	b = appendFrameHeader(b, 8, framePing, flags, 0)
	return append(b, data[:]...)
}

func appendGoAway(b []byte, lastStreamID uint32, code ErrCode) []byte {
	b = appendFrameHeader(b, 8, frameGoAway, 0, 0)
	b = binary.BigEndian.AppendUint32(b, lastStreamID)
	return binary.BigEndian.AppendUint32(b, uint32(code))
}

type setting struct {
	ID  uint16
	Val uint32
}

func appendSettings(b []byte, ack bool, settings ...setting) []byte {
	if ack {
		return appendFrameHeader(b, 0, frameSettings, flagAck, 0)
	}
	b = appendFrameHeader(b, 6*len(settings), frameSettings, 0, 0)
	for _, s := range settings {
		b = binary.BigEndian.AppendUint16(b, s.ID)
		b = binary.BigEndian.AppendUint32(b, s.Val)
	}
	return b
}

// appendHeaders appends a header block as one HEADERS frame followed by as
// many CONTINUATION frames as maxFrame requires.
func appendHeaders(b []byte, streamID uint32, endStream bool, block []byte, maxFrame int) []byte {
	flags := uint8(0)
	if endStream {
		flags |= flagEndStream
	}
	typ := frameHeaders
	for {
		chunk := block
		if len(chunk) > maxFrame {
			chunk = chunk[:maxFrame]
		}
		block = block[len(chunk):]
		f := flags
		if len(block) == 0 {
			f |= flagEndHeaders
		}
		b = appendFrameHeader(b, len(chunk), typ, f, streamID)
		b = append(b, chunk...)
		if len(block) == 0 {
			return b
		}
		typ, flags = frameContinuation, 0
	}
}

var errShortFrame = errors.New("frame payload too short")

// parseSettings validates a SETTINGS payload and calls fn for each entry.
func parseSettings(h frameHeader, p []byte, fn func(setting) error) error {
	if h.StreamID != 0 {
		return connError{ErrCodeProtocol, "SETTINGS on a stream"}
	}
	if h.has(flagAck) {
		if len(p) != 0 {
			return connError{ErrCodeFrameSize, "SETTINGS ack with payload"}
		}
		return nil
	}
	if len(p)%6 != 0 {
		return connError{ErrCodeFrameSize, "SETTINGS length not a multiple of 6"}
	}
	if len(p)/6 > maxSettingsCount {
		return connError{ErrCodeEnhanceYourCalm, "too many settings"}
	}
	for ; len(p) > 0; p = p[6:] {
		s := setting{ID: binary.BigEndian.Uint16(p), Val: binary.BigEndian.Uint32(p[2:])}
		switch s.ID {
		case settingEnablePush:
			if s.Val > 1 {
				return connError{ErrCodeProtocol, "invalid ENABLE_PUSH"}
			}
		case settingInitialWindowSize:
			if s.Val > maxWindow {
				return connError{ErrCodeFlowControl, "INITIAL_WINDOW_SIZE too large"}
			}
		case settingMaxFrameSize:
			if s.Val < minMaxFrameSize || s.Val > maxMaxFrameSize {
				return connError{ErrCodeProtocol, "invalid MAX_FRAME_SIZE"}
			}
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// parseWindowUpdate returns the increment of a WINDOW_UPDATE payload.
func parseWindowUpdate(p []byte) (uint32, error) {
	if len(p) != 4 {
		return 0, connError{ErrCodeFrameSize, "WINDOW_UPDATE length not 4"}
	}
	return binary.BigEndian.Uint32(p) & (1<<31 - 1), nil
}

func parseRSTStream(h frameHeader, p []byte) (ErrCode, error) {
	if len(p) != 4 {
		return 0, connError{ErrCodeFrameSize, "RST_STREAM length not 4"}
	}
	if h.StreamID == 0 {
		return 0, connError{ErrCodeProtocol, "RST_STREAM on stream 0"}
	}
	return ErrCode(binary.BigEndian.Uint32(p)), nil
}

func parseGoAway(h frameHeader, p []byte) (last uint32, code ErrCode, err error) {
	if h.StreamID != 0 {
		return 0, 0, connError{ErrCodeProtocol, "GOAWAY on a stream"}
	}
	if len(p) < 8 {
		return 0, 0, connError{ErrCodeFrameSize, "GOAWAY too short"}
	}
	return binary.BigEndian.Uint32(p) & (1<<31 - 1), ErrCode(binary.BigEndian.Uint32(p[4:])), nil
}

func parsePing(h frameHeader, p []byte) ([8]byte, error) {
	var d [8]byte
	if h.StreamID != 0 {
		return d, connError{ErrCodeProtocol, "PING on a stream"}
	}
	if len(p) != 8 {
		return d, connError{ErrCodeFrameSize, "PING length not 8"}
	}
	copy(d[:], p)
	return d, nil
}

// headerBlockFragment strips padding and priority fields from a HEADERS
// payload.
func headerBlockFragment(h frameHeader, p []byte) ([]byte, error) {
	pad := 0
	if h.has(flagPadded) {
		if len(p) < 1 {
			return nil, connError{ErrCodeProtocol, "HEADERS padding: " + errShortFrame.Error()}
		}
		pad = int(p[0])
		p = p[1:]
	}
	if h.has(flagPriority) {
		if len(p) < 5 {
			return nil, connError{ErrCodeProtocol, "HEADERS priority: " + errShortFrame.Error()}
		}
		p = p[5:]
	}
	if pad > len(p) {
		return nil, connError{ErrCodeProtocol, "HEADERS padding exceeds payload"}
	}
	return p[:len(p)-pad], nil
}
