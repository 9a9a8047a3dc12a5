//go:build linux

package inpod

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftmesh/weft/pkg/netns"
)

// socketPoolSize is how many ready IPv4 sockets a pod keeps. Entering a
// netns costs a locked thread and two setns calls (about a hundred
// microseconds on a busy node); creating sockets there in batches and
// connecting them from anywhere keeps that off each connection's path.
const socketPoolSize = 16

// socketPool holds unconnected, marked, non-blocking IPv4 TCP sockets
// created inside one pod's netns. A socket's namespace is fixed when it is
// created, so bind and connect can then happen on any thread.
type socketPool struct {
	ns *netns.NetNS

	mu        sync.Mutex
	fds       []int
	refilling bool
	closed    bool
	inflight  sync.WaitGroup // a refill inside the netns
}

// take returns a ready socket, or -1 when none is left; it starts a refill
// when the pool runs low.
func (p *socketPool) take() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return -1
	}
	fd := -1
	if n := len(p.fds); n > 0 {
		fd = p.fds[n-1]
		p.fds = p.fds[:n-1]
	}
	if len(p.fds) < socketPoolSize/2 && !p.refilling {
		p.refilling = true
		p.inflight.Add(1)
		go p.refill()
	}
	return fd
}

func (p *socketPool) refill() {
	defer p.inflight.Done()
	var made []int
	err := p.ns.Do(func() error {
		for range socketPoolSize {
			fd, err := newMarkedSocket(unix.AF_INET)
			if err != nil {
				return err
			}
			made = append(made, fd)
		}
		return nil
	})
	_ = err // a failed refill leaves the pool short; dials fall back to the slow path
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refilling = false
	for _, fd := range made {
		if p.closed || len(p.fds) >= socketPoolSize {
			_ = unix.Close(fd)
			continue
		}
		p.fds = append(p.fds, fd)
	}
}

// close releases every pooled socket and waits for a refill in flight, so
// the netns handle can be closed safely afterwards; later takes return -1.
func (p *socketPool) close() {
	p.mu.Lock()
	p.closed = true
	for _, fd := range p.fds {
		_ = unix.Close(fd)
	}
	p.fds = nil
	p.mu.Unlock()
	p.inflight.Wait()
}

func newMarkedSocket(family int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, Mark); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("set SO_MARK: %w", err)
	}
	return fd, nil
}

// connectFD binds fd to src (clientSource) when src is valid, connects it
// to dst honouring ctx, and returns it as a net.Conn. fd is consumed.
func connectFD(ctx context.Context, fd int, src netip.Addr, dst netip.AddrPort) (net.Conn, error) {
	if src.IsValid() {
		if err := clientSource(fd, false); err != nil {
			_ = unix.Close(fd)
			return nil, err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.Unmap().As4()}); err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("bind %s: %w", src, err)
		}
	}
	f := os.NewFile(uintptr(fd), "tcp")
	defer func() { _ = f.Close() }()
	if d, ok := ctx.Deadline(); ok {
		_ = f.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().Unmap().As4()}
	started := false
	var cerr error
	werr := rc.Write(func(fd uintptr) bool {
		if !started {
			started = true
			err := unix.Connect(int(fd), sa)
			if errors.Is(err, unix.EINPROGRESS) || errors.Is(err, unix.EINTR) {
				return false
			}
			cerr = err
			return true
		}
		v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			cerr = err
			return true
		}
		switch e := unix.Errno(v); e {
		case 0:
			return true
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		default:
			cerr = e
			return true
		}
	})
	if werr != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect %s: %w", dst, ctx.Err())
		}
		return nil, fmt.Errorf("connect %s: %w", dst, werr)
	}
	if cerr != nil {
		return nil, fmt.Errorf("connect %s: %w", dst, cerr)
	}
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return c, nil
}
