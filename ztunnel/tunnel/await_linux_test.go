package tunnel

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestAwaitDatagram checks that the wait ends with a datagram, which is
// left queued for the server, and with the context, whose end it notices
// without a datagram.
func TestAwaitDatagram(t *testing.T) {
	listen := func(t *testing.T) *net.UDPConn {
		t.Helper()
		pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		return pc
	}
	t.Run("datagram", func(t *testing.T) {
		pc := listen(t)
		woke := make(chan bool, 1)
		go func() { woke <- awaitDatagram(context.Background(), pc) }()
		c, err := net.DialUDP("udp4", nil, pc.LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		if _, err := c.Write([]byte("initial")); err != nil {
			t.Fatal(err)
		}
		if !<-woke {
			t.Fatal("awaitDatagram = false with a datagram queued")
		}
		// The datagram is still there, whole, and the socket has no
		// deadline left over.
		buf := make([]byte, 64)
		n, _, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "initial" {
			t.Fatalf("read after the wait: %q, %v; want %q", buf[:n], err, "initial")
		}
	})
	t.Run("context ends", func(t *testing.T) {
		pc := listen(t)
		ctx, cancel := context.WithCancel(context.Background())
		woke := make(chan bool, 1)
		go func() { woke <- awaitDatagram(ctx, pc) }()
		cancel()
		select {
		case got := <-woke:
			if got {
				t.Fatal("awaitDatagram = true after its context ended, with nothing queued")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("awaitDatagram did not return after its context ended")
		}
	})
	t.Run("context already ended", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if awaitDatagram(ctx, listen(t)) {
			t.Fatal("awaitDatagram = true with its context ended")
		}
	})
}
