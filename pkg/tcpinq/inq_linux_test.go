//go:build linux

package tcpinq

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection and the
// receiving end's descriptor (non-blocking, as the runtime keeps it).
func tcpPair(t *testing.T) (send *net.TCPConn, recv *net.TCPConn, fd int) {
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	send, err = net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })
	recv, err = ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close() })
	return send, recv, sysfd(t, recv)
}

func sysfd(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// readQueued reads until something arrives (the sender's bytes take a
// moment to be queued even on loopback).
func readQueued(t *testing.T, r *Reader, fd int, p []byte) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, e := r.Read(fd, p)
		if e == 0 {
			return n
		}
		if e != syscall.EAGAIN || time.Now().After(deadline) {
			t.Fatalf("read: %v", e)
		}
		time.Sleep(time.Millisecond)
	}
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func TestReaderSkipsTheReadAfterEmptyingTheQueue(t *testing.T) {
	send, _, fd := tcpPair(t)
	var r Reader
	buf := make([]byte, 64)
	write(t, send, "hello")
	if n := readQueued(t, &r, fd, buf); string(buf[:n]) != "hello" {
		t.Fatalf("read %q", buf[:n])
	}
	if r.state != stateOn {
		t.Fatalf("TCP_INQ not on for a TCP socket")
	}
	// The queue was empty after that read, so the next Read tells the
	// caller to wait, even though bytes have been queued since (in a
	// RawConn.Read the poller has their readiness and calls again).
	write(t, send, "world")
	time.Sleep(50 * time.Millisecond)
	if n, e := r.Read(fd, buf); e != syscall.EAGAIN {
		t.Fatalf("read after emptying the queue: n=%d err=%v, want EAGAIN without reading", n, e)
	}
	if n := readQueued(t, &r, fd, buf); string(buf[:n]) != "world" {
		t.Fatalf("read %q", buf[:n])
	}
}

// After Forget (a new RawConn.Read, whose start wiped the readiness the
// skip relied on) the next Read asks the kernel again.
func TestReaderForget(t *testing.T) {
	send, _, fd := tcpPair(t)
	var r Reader
	buf := make([]byte, 64)
	write(t, send, "one")
	if n := readQueued(t, &r, fd, buf); string(buf[:n]) != "one" {
		t.Fatalf("read %q", buf[:n])
	}
	write(t, send, "two")
	time.Sleep(50 * time.Millisecond)
	r.Forget()
	if n, e := r.Read(fd, buf); e != 0 || string(buf[:n]) != "two" {
		t.Fatalf("read after Forget: %q, %v; want \"two\"", buf[:n], e)
	}
}

func TestReaderReadsOnWhileBytesAreQueued(t *testing.T) {
	send, _, fd := tcpPair(t)
	var r Reader
	write(t, send, "0123456789")
	time.Sleep(50 * time.Millisecond)
	buf := make([]byte, 4)
	var got []byte
	for len(got) < 10 {
		n, e := r.Read(fd, buf)
		if e != 0 {
			t.Fatalf("read with %d of 10 bytes queued: %v", 10-len(got), e)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "0123456789" {
		t.Fatalf("read %q", got)
	}
	if n, e := r.Read(fd, buf); e != syscall.EAGAIN {
		t.Fatalf("read after the last byte: n=%d err=%v, want EAGAIN", n, e)
	}
}

// A FIN queued behind the bytes counts as one byte more: the reader reads
// on and sees the end, rather than wait for an edge that will not come.
func TestReaderSeesFINQueuedBehindData(t *testing.T) {
	send, _, fd := tcpPair(t)
	var r Reader
	write(t, send, "bye")
	if err := send.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	buf := make([]byte, 64)
	if n := readQueued(t, &r, fd, buf); string(buf[:n]) != "bye" {
		t.Fatalf("read %q", buf[:n])
	}
	if n, e := r.Read(fd, buf); n != 0 || e != 0 {
		t.Fatalf("read after the data: n=%d err=%v, want end of stream (0, no error)", n, e)
	}
}

// Where TCP_INQ is refused, Read is read(2): no read is skipped.
func TestReaderFallsBackToRead(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	var r Reader
	buf := make([]byte, 64)
	for _, s := range []string{"one", "two"} {
		if _, err := syscall.Write(fds[0], []byte(s)); err != nil {
			t.Fatal(err)
		}
		n, e := r.Read(fds[1], buf)
		if e != 0 || string(buf[:n]) != s {
			t.Fatalf("read %q, %v; want %q", buf[:n], e, s)
		}
	}
	if r.state != stateOff {
		t.Fatalf("TCP_INQ reported on for a unix socket")
	}
	if _, e := r.Read(fds[1], buf); e != syscall.EAGAIN {
		t.Fatalf("read of an empty socket: %v, want EAGAIN", e)
	}
}

func TestQueuedRejectsOtherMessages(t *testing.T) {
	if got := queued(nil); got != -1 {
		t.Fatalf("queued(nil) = %d", got)
	}
	if got := queued(make([]byte, ctlLen)); got != -1 { // level and type 0
		t.Fatalf("queued(zeroes) = %d", got)
	}
}
