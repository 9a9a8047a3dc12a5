package retry

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func readAll(t *testing.T, b *Body) string {
	t.Helper()
	r, err := b.Attempt()
	if err != nil {
		t.Fatalf("Attempt: %v", err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read attempt: %v", err)
	}
	return string(data)
}

func TestBodyReplaysWithinLimit(t *testing.T) {
	const payload = "hello, waypoint"
	b := NewBody(io.NopCloser(strings.NewReader(payload)), 64)
	for i := range 3 {
		if got := readAll(t, b); got != payload {
			t.Fatalf("attempt %d read %q, want %q", i, got, payload)
		}
	}
	if !b.Replayable() {
		t.Error("Replayable = false for a body within the limit")
	}
}

func TestBodyPartialReadThenRetry(t *testing.T) {
	payload := strings.Repeat("abcdefgh", 8)
	b := NewBody(io.NopCloser(strings.NewReader(payload)), 1024)
	first, _ := b.Attempt()
	buf := make([]byte, 10)
	if _, err := io.ReadFull(first, buf); err != nil {
		t.Fatal(err)
	}
	// The attempt failed after sending 10 bytes; the retry gets all of it.
	if got := readAll(t, b); got != payload {
		t.Fatalf("retry read %q, want %q", got, payload)
	}
	if _, err := first.Read(buf); err == nil {
		t.Error("the first attempt's reader still reads after a retry began")
	}
}

func TestBodyOverLimitIsNotReplayable(t *testing.T) {
	payload := strings.Repeat("x", 100)
	b := NewBody(io.NopCloser(strings.NewReader(payload)), 64)
	if got := readAll(t, b); got != payload {
		t.Fatalf("first attempt read %d bytes, want %d: the limit must not truncate", len(got), len(payload))
	}
	if b.Replayable() {
		t.Error("Replayable = true after reading past the limit")
	}
	if _, err := b.Attempt(); !errors.Is(err, ErrNotReplayable) {
		t.Errorf("Attempt = %v, want ErrNotReplayable", err)
	}
	// Unread bytes beyond the limit do not matter: a short read is fine.
	b2 := NewBody(io.NopCloser(strings.NewReader(payload)), 64)
	r, _ := b2.Attempt()
	if _, err := io.ReadFull(r, make([]byte, 64)); err != nil {
		t.Fatal(err)
	}
	if !b2.Replayable() {
		t.Error("Replayable = false with exactly the limit read")
	}
}

func TestBodyEmpty(t *testing.T) {
	for name, src := range map[string]io.ReadCloser{"nil": nil, "empty": io.NopCloser(strings.NewReader(""))} {
		t.Run(name, func(t *testing.T) {
			b := NewBody(src, -1)
			for range 2 {
				if got := readAll(t, b); got != "" {
					t.Fatalf("read %q, want empty", got)
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBodyAbandonedAttemptKeepsItsBytes: an abandoned attempt's reader is
// blocked reading the client's body when the retry begins; the bytes it
// then receives belong to the retry.
func TestBodyAbandonedAttemptKeepsItsBytes(t *testing.T) {
	pr, pw := io.Pipe()
	b := NewBody(pr, 1024)
	first, _ := b.Attempt()
	firstDone := make(chan error, 1)
	go func() {
		_, err := first.Read(make([]byte, 16))
		firstDone <- err
	}()
	// Let the first reader block in the pipe before the retry begins; the
	// order does not matter for correctness, only for coverage.
	second, err := b.Attempt()
	if err != nil {
		t.Fatal(err)
	}
	secondData := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(second)
		secondData <- data
	}()
	if _, err := pw.Write([]byte("part1-")); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Write([]byte("part2")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-firstDone; err == nil {
		t.Error("abandoned reader returned data after a retry began")
	}
	if got := <-secondData; !bytes.Equal(got, []byte("part1-part2")) {
		t.Errorf("retry read %q, want %q", got, "part1-part2")
	}
}

func TestBodySourceErrorIsNotReplayed(t *testing.T) {
	boom := errors.New("client reset")
	b := NewBody(io.NopCloser(io.MultiReader(strings.NewReader("ab"), errReader{boom})), 64)
	r, _ := b.Attempt()
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Fatalf("read = %v, want %v", err, boom)
	}
	if _, err := b.Attempt(); !errors.Is(err, boom) {
		t.Errorf("Attempt after a source error = %v, want it wrapped", err)
	}
}

func TestBodyClose(t *testing.T) {
	closed := 0
	b := NewBody(closeCounter{Reader: strings.NewReader("abc"), n: &closed}, 64)
	r, _ := b.Attempt()
	if err := r.Close(); err != nil || closed != 0 {
		t.Fatalf("attempt Close closed the original (err %v, closes %d)", err, closed)
	}
	b.Close()
	b.Close()
	if closed != 1 {
		t.Errorf("original closed %d times, want 1", closed)
	}
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Error("read after Close succeeded")
	}
	if _, err := b.Attempt(); err == nil {
		t.Error("Attempt after Close succeeded")
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

type closeCounter struct {
	io.Reader
	n *int
}

func (c closeCounter) Close() error { *c.n++; return nil }
