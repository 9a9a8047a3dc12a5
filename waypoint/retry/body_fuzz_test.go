package retry

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzBody drives a Body with attempts that read in fuzzed chunk sizes and
// abandon at fuzzed points. Every attempt that reads to EOF must see the
// original body exactly; a body within the limit must stay replayable;
// once not replayable, Attempt must refuse.
func FuzzBody(f *testing.F) {
	f.Add([]byte("hello, waypoint"), []byte{3, 0, 5, 1, 255}, uint16(8))
	f.Add(bytes.Repeat([]byte("x"), 300), []byte{200, 0, 7, 7, 7}, uint16(256))
	f.Add([]byte{}, []byte{0}, uint16(0))
	f.Fuzz(func(t *testing.T, data, script []byte, limit uint16) {
		b := NewBody(io.NopCloser(bytes.NewReader(data)), int(limit))
		defer b.Close()
		for len(script) > 0 {
			r, err := b.Attempt()
			if err != nil {
				if !errors.Is(err, ErrNotReplayable) {
					t.Fatalf("Attempt: %v", err)
				}
				if len(data) <= int(limit) {
					t.Fatalf("Attempt refused a %d-byte body with limit %d", len(data), limit)
				}
				return
			}
			// script[0] = how many reads before abandoning (0 = read to EOF).
			reads := int(script[0])
			script = script[1:]
			var got []byte
			for i := 0; reads == 0 || i < reads; i++ {
				size := 1
				if len(script) > 0 {
					size = int(script[0]) + 1
					script = script[1:]
				}
				buf := make([]byte, size)
				n, err := r.Read(buf)
				got = append(got, buf[:n]...)
				if !bytes.HasPrefix(data, got) {
					t.Fatalf("attempt read %q, not a prefix of the body", got)
				}
				if err == io.EOF {
					if !bytes.Equal(got, data) {
						t.Fatalf("attempt ended at %d bytes, body has %d", len(got), len(data))
					}
					break
				}
				if err != nil {
					t.Fatalf("read: %v", err)
				}
			}
			if len(data) <= int(limit) && !b.Replayable() {
				t.Fatalf("a %d-byte body with limit %d became not replayable", len(data), limit)
			}
		}
	})
}
