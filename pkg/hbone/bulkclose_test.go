package hbone

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// bulkApp is a loopback TCP server standing for the benchmark's
// application: a connection that says "bulk" gets zeros until it goes
// away, one that says "ping" gets "pong" and is closed.
func bulkApp(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				switch line {
				case "bulk\n":
					go func() { _, _ = io.Copy(io.Discard, c) }()
					buf := make([]byte, 256<<10)
					for {
						if _, err := c.Write(buf); err != nil {
							return
						}
					}
				case "ping\n":
					_, _ = c.Write([]byte("pong\n"))
				}
			})
		}
	})
	return ln.Addr().String()
}

// proxySplice carries a TCP connection over a stream as the node proxy
// does: the stream's bytes go to tcp by SpliceTo, tcp's bytes to the
// stream on this goroutine, each end passed on as a half-close, and a
// failed copy closes both.
func proxySplice(s *Stream, tcp *net.TCPConn) {
	done := make(chan struct{})
	if err := s.SpliceTo(tcp, func(_ int64, err error) {
		if err != nil {
			_ = s.Close()
			_ = tcp.Close()
		}
		close(done)
	}); err != nil {
		_ = s.Close()
		_ = tcp.Close()
		return
	}
	if _, err := io.Copy(s, tcp); err != nil {
		_ = s.Close()
		_ = tcp.Close()
	} else {
		_ = s.CloseWrite()
	}
	<-done
	_ = s.Close()
	_ = tcp.Close()
}

// outboundProxy listens on loopback and carries every accepted connection
// over a pooled stream to the app, as a node proxy's outbound side does.
func outboundProxy(t *testing.T, ts *testSetup, app string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				s, err := ts.pool.Dial(ctx, ts.key, app, nil)
				cancel()
				if err != nil {
					_ = c.Close()
					return
				}
				proxySplice(s, c.(*net.TCPConn))
			})
		}
	})
	return ln.Addr().String()
}

// inboundHandler connects each stream to its authority and splices.
func inboundHandler() Handler {
	return HandlerFunc(func(ctx context.Context, r *Request) {
		up, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.Authority)
		if err != nil {
			_ = r.Reject(503)
			return
		}
		s, err := r.Accept()
		if err != nil {
			_ = up.Close()
			return
		}
		proxySplice(s, up.(*net.TCPConn))
	})
}

// ping opens a new connection through addr and waits for the app's pong.
func ping(addr string, limit time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, limit)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(limit))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "pong\n" {
		return errors.New("unexpected answer " + line)
	}
	return nil
}

// TestBulkStreamsClosedMidTransfer reproduces the whole-mesh benchmark's
// bulk-throughput scenario on one pooled connection: rounds of parallel
// downloads through an outbound and an inbound proxy whose clients close
// mid-transfer with unread data (a TCP reset), and after every round a new
// connection must still be answered promptly, as must one opened while
// the downloads run.
func TestBulkStreamsClosedMidTransfer(t *testing.T) {
	app := bulkApp(t)
	ts := newSetup(t, inboundHandler(), nil, nil)
	front := outboundProxy(t, ts, app)
	if err := ping(front, 5*time.Second); err != nil {
		t.Fatalf("first ping: %v", err)
	}
	for round := range 6 {
		conns := []int{1, 8}[round%2]
		var wg sync.WaitGroup
		var mu sync.Mutex
		got := make([]int64, conns)
		for i := range conns {
			c, err := net.Dial("tcp", front)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("bulk\n")); err != nil {
				t.Fatal(err)
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }() // with unread data: a reset
				// The first bytes may take a while on a busy machine;
				// then 300 ms of reading.
				_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
				buf := make([]byte, 256<<10)
				var n int64
				if k, err := c.Read(buf); err == nil {
					n = int64(k)
					_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				}
				for n > 0 {
					k, err := c.Read(buf)
					n += int64(k)
					if err != nil {
						break
					}
				}
				// A client that falls behind before it closes, as a
				// load generator on a busy machine does: the proxy's
				// stream fills its window with data nobody will read.
				time.Sleep(200 * time.Millisecond)
				mu.Lock()
				got[i] = n
				mu.Unlock()
			})
		}
		time.Sleep(100 * time.Millisecond)
		if err := ping(front, 3*time.Second); err != nil {
			t.Errorf("round %d: a new connection during the downloads: %v", round, err)
		}
		wg.Wait()
		for i, n := range got {
			if n == 0 {
				t.Errorf("round %d: download %d read no bytes", round, i)
			}
		}
		start := time.Now()
		if err := ping(front, 3*time.Second); err != nil {
			t.Fatalf("round %d (%d downloads closed mid-transfer): a new connection was not answered: %v (pool %v)", round, conns, err, ts.pool.Stats())
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("round %d: a new connection took %s", round, d)
		}
	}
}
