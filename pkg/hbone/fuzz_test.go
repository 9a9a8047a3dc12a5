package hbone

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
)

// Fuzz targets; run each briefly in make test and longer by hand:
//
//	go test -run='^$' -fuzz='^FuzzParseRequest$' -fuzztime=10s ./pkg/hbone
//	go test -run='^$' -fuzz='^FuzzServerConn$' -fuzztime=10m ./pkg/hbone
//	go test -run='^$' -fuzz='^FuzzFrameParsers$' -fuzztime=10m ./pkg/hbone

// encodeFields turns "name: value" lines into header fields.
func decodeFieldLines(s string) []hpack.HeaderField {
	var out []hpack.HeaderField
	for _, line := range strings.Split(s, "\n") {
		name, value, _ := strings.Cut(line, ": ")
		out = append(out, hpack.HeaderField{Name: name, Value: value})
	}
	return out
}

// FuzzParseRequest checks request validation never panics and accepts only
// well-formed CONNECTs.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		":method: CONNECT\n:authority: 10.0.0.1:80\nforwarded: for=\"1.2.3.4:5\"\nbaggage: a=b\ntraceparent: 00-x",
		":method: GET\n:authority: a:1\n:path: /\n:scheme: https",
		":authority: a:1\n:method: CONNECT\n:method: CONNECT",
		":method: CONNECT\n:authority: [::1]:443",
		":method: CONNECT\n:authority: host:0",
		":method: CONNECT\nx: y\n:authority: a:1",
		":method: CONNECT\n:authority: a:1\nConnection: close",
		":method: CONNECT\n:authority: a:1\nte: gzip",
		":method: CONNECT\n:authority: user@a:1",
	} {
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, lines string, tooBig bool) {
		fields := decodeFieldLines(lines)
		head, status, _ := parseRequest(fields, tooBig)
		if status != 0 {
			return
		}
		if tooBig {
			t.Fatal("accepted an oversized header list")
		}
		if err := validAuthority(head.authority); err != nil {
			t.Fatalf("accepted authority %q: %v", head.authority, err)
		}
		method := ""
		for _, f := range fields {
			if f.Name == ":method" {
				method = f.Value
			}
			if f.Name == ":path" || f.Name == ":scheme" {
				t.Fatalf("accepted %s in CONNECT", f.Name)
			}
		}
		if method != "CONNECT" {
			t.Fatalf("accepted method %q", method)
		}
	})
}

// frameBytes builds a frame for seeds.
func frameBytes(typ, flags uint8, id uint32, payload []byte) []byte {
	b := appendFrameHeader(nil, len(payload), typ, flags, id)
	return append(b, payload...)
}

func headerBlock(fields ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return buf.Bytes()
}

// FuzzServerConn feeds arbitrary frames, after a valid preface and
// SETTINGS, to a server connection whose handler echoes, and checks the
// server neither panics nor hangs.
func FuzzServerConn(f *testing.F) {
	connect := headerBlock(":method", "CONNECT", ":authority", "10.0.0.1:80")
	get := headerBlock(":method", "GET", ":authority", "a:1", ":path", "/", ":scheme", "https")
	seeds := [][]byte{
		frameBytes(frameHeaders, flagEndHeaders, 1, connect),
		append(frameBytes(frameHeaders, flagEndHeaders, 1, connect), frameBytes(frameData, flagEndStream, 1, []byte("hello"))...),
		append(frameBytes(frameHeaders, 0, 1, connect[:2]), frameBytes(frameContinuation, flagEndHeaders, 1, connect[2:])...),
		frameBytes(frameHeaders, flagEndHeaders|flagEndStream, 3, get),
		append(frameBytes(frameHeaders, flagEndHeaders, 1, connect), frameBytes(frameRSTStream, 0, 1, []byte{0, 0, 0, 8})...),
		append(frameBytes(frameHeaders, flagEndHeaders, 1, connect), frameBytes(frameData, flagPadded, 1, []byte{3, 'h', 'i', 0, 0, 0})...),
		frameBytes(frameWindowUpdate, 0, 0, []byte{0, 0, 1, 0}),
		frameBytes(framePing, 0, 0, []byte("12345678")),
		frameBytes(frameGoAway, 0, 0, []byte{0, 0, 0, 0, 0, 0, 0, 0}),
		frameBytes(frameSettings, 0, 0, []byte{0, 4, 0, 0, 0, 1}),
		frameBytes(frameData, 0, 5, []byte("x")),
		frameBytes(framePriority, 0, 1, []byte{0, 0, 0, 0, 1}),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	settings := appendSettings(nil, false)
	f.Fuzz(func(t *testing.T, data []byte) {
		cli, srvSide := net.Pipe()
		srv := &Server{Handler: echoHandler()}
		lim := Limits{MaxConcurrentStreams: 8, HandshakeTimeout: 2 * time.Second, MaxHeaderListSize: 4096}.withDefaults(true)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = srv.serveConn(context.Background(), &connSet{conns: map[*conn]struct{}{}}, srvSide, nil, lim, slog.New(slog.DiscardHandler))
		}()
		go func() { _, _ = io.Copy(io.Discard, cli) }()
		_ = cli.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = cli.Write([]byte(clientPreface))
		_, _ = cli.Write(settings)
		_, _ = cli.Write(data)
		_ = cli.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("server connection did not end after the client closed")
		}
	})
}

// FuzzFrameParsers runs every payload parser on arbitrary input.
func FuzzFrameParsers(f *testing.F) {
	f.Add([]byte{0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1})
	f.Add([]byte{0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 5, 1, 0x28, 0, 0, 0, 1, 2, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < frameHeaderLen {
			return
		}
		h := parseFrameHeader(b)
		p := b[frameHeaderLen:]
		_ = parseSettings(h, p, func(setting) error { return nil })
		_, _ = parseWindowUpdate(p)
		_, _ = parseRSTStream(h, p)
		_, _, _ = parseGoAway(h, p)
		_, _ = parsePing(h, p)
		if frag, err := headerBlockFragment(h, p); err == nil && len(frag) > len(p) {
			t.Fatal("fragment longer than payload")
		}
		// Header round trip.
		enc := appendFrameHeader(nil, int(h.Length), h.Type, h.Flags, h.StreamID)
		if got := parseFrameHeader(enc); got != h {
			t.Fatalf("header round trip: %+v != %+v", got, h)
		}
	})
}
