//go:build linux

package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
}

func newTestNS(t *testing.T) *NetNS {
	t.Helper()
	requireRoot(t)
	n, err := New()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	if err := n.LoopbackUp(); err != nil {
		t.Fatalf("LoopbackUp: %v", err)
	}
	return n
}

func hostInode(t *testing.T) uint64 {
	t.Helper()
	h, err := Open("/proc/self/ns/net")
	if err != nil {
		t.Fatalf("open host netns: %v", err)
	}
	defer func() { _ = h.Close() }()
	ino, err := h.Inode()
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

func TestDoEntersAndReturns(t *testing.T) {
	n := newTestNS(t)
	want, err := n.Inode()
	if err != nil {
		t.Fatal(err)
	}
	host := hostInode(t)
	if host == want {
		t.Fatal("new namespace has the host's inode")
	}
	for i := range 50 {
		var inside uint64
		err := n.Do(func() error {
			cur, err := Current()
			if err != nil {
				return err
			}
			defer func() { _ = cur.Close() }()
			inside, err = cur.Inode()
			return err
		})
		if err != nil {
			t.Fatalf("Do #%d: %v", i, err)
		}
		if inside != want {
			t.Fatalf("Do #%d ran in netns %d, want %d", i, inside, want)
		}
		cur, err := Current()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := cur.Inode()
		_ = cur.Close()
		if got != host {
			t.Fatalf("after Do #%d caller is in netns %d, want host %d", i, got, host)
		}
	}
}

func TestDoReturnsErrorAndPanics(t *testing.T) {
	n := newTestNS(t)
	sentinel := errors.New("boom")
	if err := n.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Fatalf("Do error = %v, want %v", err, sentinel)
	}
	func() {
		defer func() {
			if p := recover(); p != "oops" {
				t.Fatalf("recovered %v, want oops", p)
			}
		}()
		_ = n.Do(func() error { panic("oops") })
	}()
}

func TestClosedHandle(t *testing.T) {
	n := newTestNS(t)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n.Fd() != -1 {
		t.Fatalf("Fd after Close = %d", n.Fd())
	}
	if err := n.Do(func() error { return nil }); err == nil {
		t.Fatal("Do on closed handle succeeded")
	}
}

func TestOpenRejectsOtherFiles(t *testing.T) {
	requireRoot(t)
	for _, path := range []string{"/proc/self/ns/mnt", "/etc/hostname", "/nonexistent/netns"} {
		t.Run(path, func(t *testing.T) {
			if n, err := Open(path); err == nil {
				_ = n.Close()
				t.Fatalf("Open(%s) succeeded", path)
			}
		})
	}
	f, err := os.Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	n, err := FromFile(f)
	if err != nil {
		t.Fatalf("FromFile: %v", err)
	}
	_ = n.Close()
}

func TestListenDialInside(t *testing.T) {
	n := newTestNS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := n.Listen(ctx, nil, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		_, _ = io.WriteString(c, "hello from netns")
	}()
	addr := l.Addr().String()

	// From the host namespace the listener is not reachable.
	if c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr); err == nil {
		_ = c.Close()
		t.Fatalf("dial %s from host succeeded; listener is not in the netns", addr)
	}
	c, err := n.Dial(ctx, nil, "tcp", addr)
	if err != nil {
		t.Fatalf("Dial inside: %v", err)
	}
	defer func() { _ = c.Close() }()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "hello from netns" {
		t.Fatalf("read %q", b)
	}
}

func TestListenControlHook(t *testing.T) {
	n := newTestNS(t)
	called := false
	lc := &net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		called = true
		return nil
	}}
	l, err := n.Listen(context.Background(), lc, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Close()
	if !called {
		t.Fatal("Control hook was not called")
	}
}

func TestRejectsHostnames(t *testing.T) {
	n := newTestNS(t)
	if _, err := n.Dial(context.Background(), nil, "tcp", "localhost:80"); err == nil || !strings.Contains(err.Error(), "IP literal") {
		t.Fatalf("Dial hostname err = %v", err)
	}
}

func TestNamed(t *testing.T) {
	requireRoot(t)
	b := make([]byte, 4)
	rand.Read(b)
	name := "wt-netns-" + hex.EncodeToString(b)
	n, err := NewNamed(name)
	if err != nil {
		t.Fatalf("NewNamed: %v", err)
	}
	t.Cleanup(func() { _ = n.Close(); _ = RemoveNamed(name) })
	again, err := Open(NamedDir + "/" + name)
	if err != nil {
		t.Fatalf("Open pinned: %v", err)
	}
	same, err := again.SameAs(n)
	_ = again.Close()
	if err != nil || !same {
		t.Fatalf("pinned netns is not the created one: same=%v err=%v", same, err)
	}
	if _, err := exec.LookPath("ip"); err == nil {
		out, err := exec.Command("ip", "netns", "exec", name, "ip", "-o", "link", "show", "lo").CombinedOutput()
		if err != nil {
			t.Fatalf("ip netns exec: %v: %s", err, out)
		}
	}
	if err := RemoveNamed(name); err != nil {
		t.Fatalf("RemoveNamed: %v", err)
	}
	if err := RemoveNamed(name); err != nil {
		t.Fatalf("RemoveNamed twice: %v", err)
	}
	if _, err := os.Stat(NamedDir + "/" + name); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin still exists: %v", err)
	}
}

func TestExecInsideSeesNetns(t *testing.T) {
	n := newTestNS(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip not installed")
	}
	ino, _ := n.Inode()
	var out []byte
	err := n.Do(func() error {
		var err error
		out, err = exec.Command("readlink", "/proc/self/ns/net").Output()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("net:[%d]", ino); strings.TrimSpace(string(out)) != want {
		t.Fatalf("child process netns %q, want %q", out, want)
	}
}
