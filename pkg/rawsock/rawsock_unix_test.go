//go:build unix

package rawsock

import (
	"syscall"
	"testing"
)

func TestReadWrite(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 8)
	if n, e := Read(fds[1], buf); n != 0 || e != syscall.EAGAIN {
		t.Fatalf("read of an empty socket = %d, %v; want 0, EAGAIN", n, e)
	}
	if n, e := Write(fds[0], []byte("hello")); n != 5 || e != 0 {
		t.Fatalf("write = %d, %v; want 5, no error", n, e)
	}
	if n, e := Read(fds[1], buf); n != 5 || e != 0 || string(buf[:n]) != "hello" {
		t.Fatalf("read = %d %q, %v; want 5 \"hello\"", n, buf[:n], e)
	}
	if n, e := Read(fds[1], nil); n != 0 || e != 0 {
		t.Fatalf("read into nothing = %d, %v; want 0, no error", n, e)
	}
}
