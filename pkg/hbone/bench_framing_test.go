package hbone

import (
	"bytes"
	"io"
	"strconv"
	"testing"

	"golang.org/x/net/http2"
)

// BenchmarkFraming compares x/net/http2's Framer with this package's
// framing for what dominates a tunnel: writing a DATA frame and reading it
// back into a buffer a stream can keep. The Framer writes each frame with
// its own Write call (one TLS record each, unless buffered again) and
// reads every payload into a fresh allocation, which a stream must copy
// or retain; ours appends frames to the connection's batch buffer and
// reads payloads straight into pooled stream buffers.
func BenchmarkFraming(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10} {
		payload := make([]byte, size)
		b.Run("xnet/"+sizeName(size), func(b *testing.B) {
			var buf bytes.Buffer
			fr := http2.NewFramer(&buf, &buf)
			fr.SetMaxReadFrameSize(1 << 20)
			out := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for range b.N {
				if err := fr.WriteData(1, false, payload); err != nil {
					b.Fatal(err)
				}
				f, err := fr.ReadFrame()
				if err != nil {
					b.Fatal(err)
				}
				copy(out, f.(*http2.DataFrame).Data())
			}
		})
		b.Run("own/"+sizeName(size), func(b *testing.B) {
			var wbuf []byte
			var hdr [frameHeaderLen]byte
			r := bytes.NewReader(nil)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for range b.N {
				wbuf = appendDataFrame(wbuf[:0], 1, false, payload)
				r.Reset(wbuf)
				h, err := readFrameHeader(r, hdr[:])
				if err != nil {
					b.Fatal(err)
				}
				p := getBuf(int(h.Length))
				if _, err := io.ReadFull(r, *p); err != nil {
					b.Fatal(err)
				}
				putBuf(p)
			}
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
