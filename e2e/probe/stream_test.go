package probe

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// server runs a raw TCP echo on loopback that greets, then hands the
// connection to serve.
func server(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() { // owned by the test: ends when ln closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				if _, err := c.Write([]byte("{\"protocol\":\"tcp\"}\n")); err != nil {
					return
				}
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestStreamOutcomes(t *testing.T) {
	echo := func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	}
	tests := []struct {
		name  string
		serve func(net.Conn)
		want  Outcome
	}{
		{"echo", echo, OK},
		{"clean close after 100 bytes", func(c net.Conn) {
			_, _ = io.CopyN(c, c, 100)
			_ = c.(*net.TCPConn).CloseWrite()
			_, _ = io.Copy(io.Discard, c)
		}, Truncated},
		{"reset after 100 bytes", func(c net.Conn) {
			_, _ = io.CopyN(c, c, 100)
			_ = c.(*net.TCPConn).SetLinger(0)
		}, Failed},
		{"flipped byte", func(c net.Conn) {
			b := make([]byte, 10)
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			b[3] ^= 1
			_, _ = c.Write(b)
			echo(c)
		}, Corrupted},
		{"closed before greeting", nil, Refused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var addr string
			if tc.serve == nil {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr = ln.Addr().String()
				go func() {
					c, err := ln.Accept()
					if err == nil {
						_ = c.Close()
					}
				}()
				t.Cleanup(func() { _ = ln.Close() })
			} else {
				addr = server(t, tc.serve)
			}
			cfg := StreamConfig{Targets: []string{addr}, Duration: time.Minute, Count: 1, Concurrency: 1, MinSize: 5000, MaxSize: 5000, Chunk: 1000, Timeout: 5 * time.Second}
			rep, err := Stream(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[Outcome]int{tc.want: 1}, rep.Outcomes); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s\n%+v", diff, rep.Bad)
			}
		})
	}
}

func TestStreamMany(t *testing.T) {
	addr := server(t, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	})
	cfg := StreamConfig{Targets: []string{addr}, Duration: 300 * time.Millisecond, Concurrency: 8, MinSize: 1, MaxSize: 1 << 20, Chunk: 16 << 10, Timeout: 5 * time.Second, Seed: 1}
	rep, err := Stream(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Conns == 0 || rep.Outcomes[OK] != rep.Conns {
		t.Fatalf("want every connection OK: %+v", rep)
	}
	t.Logf("%d connections, %d bytes verified", rep.Conns, rep.Bytes)
}
