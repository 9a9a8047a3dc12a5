package hbone

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestEchoAndRequestFields(t *testing.T) {
	got := make(chan Request, 1)
	h := HandlerFunc(func(ctx context.Context, r *Request) {
		got <- *r
		echoHandler().ServeHBONE(ctx, r)
	})
	ts := newSetup(t, h, nil, nil)
	hdr := http.Header{
		"Forwarded":   {`for="10.0.0.9:4000"`},
		"Baggage":     {"k8s.namespace.name=client"},
		"Traceparent": {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
	}
	s := ts.dial(t, hdr)
	payload := make([]byte, 3<<20+17)
	_, _ = rand.Read(payload)
	go func() {
		_, _ = s.Write(payload)
		_ = s.CloseWrite()
	}()
	back, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if !bytes.Equal(back, payload) {
		t.Fatalf("echo mismatch: got %d bytes, want %d", len(back), len(payload))
	}
	_ = s.Close()
	r := <-got
	want := []string{"10.0.0.1:8080", clientID, `for="10.0.0.9:4000"`, "k8s.namespace.name=client", hdr.Get("Traceparent")}
	if diff := cmp.Diff(want, []string{r.Authority, r.PeerIdentity, r.Forwarded, r.Baggage, r.Traceparent}); diff != "" {
		t.Errorf("request fields (-want +got):\n%s", diff)
	}
}

// TestStreamPeerIdentity: each side's Stream names the other side's
// verified identity.
func TestStreamPeerIdentity(t *testing.T) {
	srvSide := make(chan string, 1)
	h := HandlerFunc(func(ctx context.Context, r *Request) {
		s, err := r.Accept()
		if err != nil {
			srvSide <- err.Error()
			return
		}
		srvSide <- s.PeerIdentity()
		_, _ = io.Copy(io.Discard, s)
	})
	ts := newSetup(t, h, nil, nil)
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()
	if got := s.PeerIdentity(); got != serverID {
		t.Errorf("client stream's peer = %q, want %q", got, serverID)
	}
	if got := <-srvSide; got != clientID {
		t.Errorf("server stream's peer = %q, want %q", got, clientID)
	}
}

func TestHalfClose(t *testing.T) {
	tests := []struct {
		name        string
		serverFirst bool
	}{
		{"client closes write first", false},
		{"server closes write first", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serverDone := make(chan error, 1)
			h := HandlerFunc(func(_ context.Context, r *Request) {
				s, _ := r.Accept()
				serverDone <- func() error {
					if tt.serverFirst {
						if _, err := s.Write([]byte("hello")); err != nil {
							return err
						}
						if err := s.CloseWrite(); err != nil {
							return err
						}
						if _, err := s.Write([]byte("x")); err == nil {
							return errors.New("write after CloseWrite succeeded")
						}
					}
					b, err := io.ReadAll(s)
					if err != nil {
						return err
					}
					if string(b) != "ping" {
						return errors.New("server read " + string(b))
					}
					if !tt.serverFirst {
						if _, err := s.Write([]byte("hello")); err != nil {
							return err
						}
						return s.CloseWrite()
					}
					return nil
				}()
			})
			ts := newSetup(t, h, nil, nil)
			s := ts.dial(t, nil)
			if tt.serverFirst {
				b, err := io.ReadAll(s)
				if err != nil || string(b) != "hello" {
					t.Fatalf("client read %q, %v", b, err)
				}
				// Our write side still works after the peer's FIN.
			}
			if _, err := s.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if err := s.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if !tt.serverFirst {
				b, err := io.ReadAll(s)
				if err != nil || string(b) != "hello" {
					t.Fatalf("client read %q, %v", b, err)
				}
			}
			if err := <-serverDone; err != nil {
				t.Fatalf("server: %v", err)
			}
			_ = s.Close()
			waitFor(t, func() bool { return ts.pool.Stats()[ts.key].Streams == 0 })
		})
	}
}

func TestReset(t *testing.T) {
	t.Run("client close resets server", func(t *testing.T) {
		serverErr := make(chan error, 1)
		h := HandlerFunc(func(_ context.Context, r *Request) {
			s, _ := r.Accept()
			buf := make([]byte, 10)
			n, _ := io.ReadFull(s, buf[:4])
			_, err := s.Read(buf[n:])
			serverErr <- err
		})
		ts := newSetup(t, h, nil, nil)
		s := ts.dial(t, nil)
		_, _ = s.Write([]byte("data"))
		time.Sleep(50 * time.Millisecond)
		_ = s.Close()
		select {
		case err := <-serverErr:
			if !isReset(err, ErrCodeCancel) {
				t.Fatalf("server Read error = %v, want RST_STREAM CANCEL", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("server did not see the reset")
		}
		if _, err := s.Read(make([]byte, 1)); err == nil {
			t.Error("Read after Close succeeded")
		}
	})
	t.Run("server abort resets client", func(t *testing.T) {
		h := HandlerFunc(func(_ context.Context, r *Request) {
			s, _ := r.Accept()
			_, _ = s.Write([]byte("partial"))
			s.Abort()
		})
		ts := newSetup(t, h, nil, nil)
		s := ts.dial(t, nil)
		b, err := io.ReadAll(s)
		if !isReset(err, ErrCodeCancel) {
			t.Fatalf("client ReadAll = %q, %v; want RST_STREAM CANCEL", b, err)
		}
		waitFor(t, func() bool {
			_, err := s.Write([]byte("x"))
			return err != nil
		})
	})
}

func TestRejectStatus(t *testing.T) {
	tests := []struct {
		name string
		h    HandlerFunc
		want int
	}{
		{"denied", func(_ context.Context, r *Request) { _ = r.Reject(http.StatusUnauthorized) }, 401},
		{"upstream down", func(_ context.Context, r *Request) { _ = r.Reject(http.StatusServiceUnavailable) }, 503},
		{"unanswered", func(context.Context, *Request) {}, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newSetup(t, tt.h, nil, nil)
			_, err := ts.pool.Dial(context.Background(), ts.key, "10.0.0.1:80", nil)
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.want {
				t.Fatalf("Dial error = %v, want status %d", err, tt.want)
			}
			waitFor(t, func() bool { return ts.pool.Stats()[ts.key].Streams == 0 })
		})
	}
}

func TestDeadlines(t *testing.T) {
	ts := newSetup(t, HandlerFunc(func(ctx context.Context, r *Request) {
		s, _ := r.Accept()
		_, _ = io.Copy(io.Discard, s)
	}), nil, nil)
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()
	_ = s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := s.Read(make([]byte, 1))
	if !errors.Is(err, errTimeout) {
		t.Fatalf("Read = %v, want deadline exceeded", err)
	}
}

// TestDeadlineReuse checks deadlines set per request cost no allocation
// (one timer per stream, moved), that a deadline moved later does not fire
// at its old time, that one moved earlier does, and that clearing one
// stops it.
func TestDeadlineReuse(t *testing.T) {
	ts := newSetup(t, echoHandler(), nil, nil)
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()
	_ = s.SetDeadline(time.Now().Add(time.Hour))
	if n := testing.AllocsPerRun(100, func() {
		_ = s.SetReadDeadline(time.Now().Add(time.Hour))
		_ = s.SetWriteDeadline(time.Now().Add(time.Hour))
	}); n != 0 {
		t.Errorf("SetReadDeadline+SetWriteDeadline: %v allocations per call, want 0", n)
	}

	read := func() (time.Duration, error) {
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := s.Read(make([]byte, 1)); done <- err }()
		select {
		case err := <-done:
			return time.Since(start), err
		case <-time.After(5 * time.Second):
			t.Fatal("Read still blocked 5s after its deadline")
			return 0, nil
		}
	}
	// Moved later: the old 30 ms deadline must not end the Read; the echo
	// of a byte written at 100 ms does.
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_ = s.SetReadDeadline(time.Now().Add(time.Hour))
	time.AfterFunc(100*time.Millisecond, func() { _, _ = s.Write([]byte{1}) })
	if took, err := read(); err != nil || took < 90*time.Millisecond {
		t.Fatalf("Read after moving the deadline later = %v after %s, want the echoed byte after ~100ms", err, took)
	}
	// Moved earlier: fires at the new time.
	_ = s.SetReadDeadline(time.Now().Add(time.Hour))
	_ = s.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := read(); !errors.Is(err, errTimeout) {
		t.Fatalf("Read after moving the deadline earlier = %v, want deadline exceeded", err)
	}
	// Cleared: Reads work again.
	_ = s.SetReadDeadline(time.Time{})
	time.AfterFunc(50*time.Millisecond, func() { _, _ = s.Write([]byte{2}) })
	if _, err := read(); err != nil {
		t.Fatalf("Read after clearing the deadline = %v", err)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCloseUnblocksRead checks a Read waiting for data (and so holding
// the connection's read role) returns when the stream is closed, and that
// other streams keep working afterwards.
func TestCloseUnblocksRead(t *testing.T) {
	ts := newSetup(t, echoHandler(), nil, nil)
	s := ts.dial(t, nil)
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Read returned no error after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
	s2 := ts.dial(t, nil)
	defer func() { _ = s2.Close() }()
	if _, err := s2.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := io.ReadFull(s2, b); err != nil || string(b) != "ok" {
		t.Fatalf("second stream read %q, %v", b, err)
	}
}

// TestManyReadersShareTheReadRole runs streams whose readers contend for
// the read role while data arrives for all of them.
func TestManyReadersShareTheReadRole(t *testing.T) {
	ts := newSetup(t, echoHandler(), nil, nil)
	const streams, rounds = 20, 200
	errs := make(chan error, streams)
	for range streams {
		go func() {
			errs <- func() error {
				s, err := ts.pool.Dial(context.Background(), ts.key, "10.0.0.1:80", nil)
				if err != nil {
					return err
				}
				defer func() { _ = s.Close() }()
				msg := make([]byte, 700)
				back := make([]byte, 700)
				for range rounds {
					_, _ = rand.Read(msg)
					if _, err := s.Write(msg); err != nil {
						return err
					}
					if _, err := io.ReadFull(s, back); err != nil {
						return err
					}
					if !bytes.Equal(msg, back) {
						return errors.New("echo mismatch")
					}
				}
				return nil
			}()
		}()
	}
	for range streams {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriterWithoutReaderGetsWindowUpdates checks a stream that only
// writes, right after reading (so nobody holds the read role), still
// receives WINDOW_UPDATEs promptly.
func TestWriterWithoutReaderGetsWindowUpdates(t *testing.T) {
	const size = 8 << 20
	got := make(chan int64, 1)
	h := HandlerFunc(func(_ context.Context, r *Request) {
		s, _ := r.Accept()
		_, _ = s.Write([]byte("hi"))
		n, _ := io.Copy(io.Discard, s)
		got <- n
		_ = s.CloseWrite()
	})
	ts := newSetup(t, h, func(s *Server) { s.Limits.StreamWindow = 64 << 10 }, nil)
	s := ts.dial(t, nil)
	defer func() { _ = s.Close() }()
	b := make([]byte, 2)
	if _, err := io.ReadFull(s, b); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	if n := <-got; n != size {
		t.Fatalf("server read %d bytes, want %d", n, size)
	}
	// 128 window round trips; a stall of even a few ms each would show.
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("8 MiB through a 64 KiB window took %s", d)
	}
}

// TestConcurrentLargeWrites echoes several streams at once over one
// connection with writes of mixed sizes, so frames sent from the writer's
// own buffer (writeDataDirect) interleave with frames queued by others.
func TestConcurrentLargeWrites(t *testing.T) {
	ts := newSetup(t, echoHandler(), nil, nil)
	sizes := []int{1 << 10, 40<<10 + 3, 64 << 10, 100<<10 + 1, 16<<10 - 9}
	const streams = 6
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		s := ts.dial(t, nil)
		payload := make([]byte, 2<<20+i)
		_, _ = rand.Read(payload)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			go func() {
				p := payload
				for k := 0; len(p) > 0; k++ {
					n := min(sizes[(k+i)%len(sizes)], len(p))
					if _, err := s.Write(p[:n]); err != nil {
						return
					}
					p = p[n:]
				}
				_ = s.CloseWrite()
			}()
			back, err := io.ReadAll(s)
			if err != nil {
				errs <- fmt.Errorf("stream %d: ReadAll: %w", i, err)
				return
			}
			if !bytes.Equal(back, payload) {
				errs <- fmt.Errorf("stream %d: echo mismatch: got %d bytes, want %d", i, len(back), len(payload))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
