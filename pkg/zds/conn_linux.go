//go:build linux

package zds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
)

// maxFDs is how many descriptors one receive makes room for; more than one
// is already a protocol error, the room lets us see and close extras.
const maxFDs = 8

// NewConn wraps a connected SOCK_SEQPACKET unix socket.
func NewConn(uc *net.UnixConn) *Conn {
	return &Conn{
		uc:      uc,
		timeout: DefaultTimeout,
		buf:     make([]byte, MaxMessageSize+1),
		oob:     make([]byte, unix.CmsgSpace(maxFDs*4)),
	}
}

// Pair returns two connected Conns over a socketpair, for tests and
// in-process use.
func Pair() (*Conn, *Conn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("zds socketpair: %w", err)
	}
	a, err := fdConn(fds[0])
	if err != nil {
		_ = unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := fdConn(fds[1])
	if err != nil {
		_ = a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func fdConn(fd int) (*Conn, error) {
	f := os.NewFile(uintptr(fd), "zds-socketpair")
	defer func() { _ = f.Close() }()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("zds socketpair conn: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("zds socketpair conn: unexpected type %T", c)
	}
	return NewConn(uc), nil
}

// Dial connects to the node agent's ZDS socket (ztunnel's side). It does
// not send the hello; call SendHello next.
func Dial(ctx context.Context, path string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		return nil, fmt.Errorf("dial zds socket %s: %w", path, err)
	}
	return NewConn(c.(*net.UnixConn)), nil
}

// Listen listens on the ZDS socket path (the node agent's side), creating
// its directory and replacing a stale socket file. The file is removed on
// Close.
func Listen(path string) (*Listener, error) {
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return nil, fmt.Errorf("create zds socket dir: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("zds socket path %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale zds socket: %w", err)
		}
	}
	ul, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listen on zds socket %s: %w", path, err)
	}
	ul.SetUnlinkOnClose(true)
	return &Listener{ul: ul, path: path}, nil
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			if i == 0 {
				return "/"
			}
			return path[:i]
		}
	}
	return "."
}

// Accept waits for the next ztunnel connection until ctx is done. It does
// not read the hello; call RecvHello next.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	stop := context.AfterFunc(ctx, func() { _ = l.ul.SetDeadline(time.Now()) })
	defer stop()
	uc, err := l.ul.AcceptUnix()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("accept zds connection: %w", err)
	}
	return NewConn(uc), nil
}

// deadline picks the earlier of now+timeout (if timeout > 0) and ctx's
// deadline; zero means none.
func (c *Conn) deadline(ctx context.Context, bounded bool) time.Time {
	var d time.Time
	if bounded && c.timeout > 0 {
		d = time.Now().Add(c.timeout)
	}
	if cd, ok := ctx.Deadline(); ok && (d.IsZero() || cd.Before(d)) {
		d = cd
	}
	return d
}

func (c *Conn) send(ctx context.Context, msg proto.Message, ns *os.File) error {
	b, err := proto.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode zds message: %w", err)
	}
	if len(b) == 0 || len(b) > MaxMessageSize {
		return fmt.Errorf("encode zds message: %d bytes is outside 1..%d", len(b), MaxMessageSize)
	}
	var oob []byte
	if ns != nil {
		oob = unix.UnixRights(int(ns.Fd()))
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.uc.SetWriteDeadline(c.deadline(ctx, true)); err != nil {
		return fmt.Errorf("set zds write deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.uc.SetWriteDeadline(time.Now()) })
	defer stop()
	n, _, err := c.uc.WriteMsgUnix(b, oob, nil)
	// Keep the file (and its descriptor) alive until the kernel has it.
	runtime.KeepAlive(ns)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("write zds message: %w", err)
	}
	if n != len(b) {
		return fmt.Errorf("write zds message: short write %d of %d bytes", n, len(b))
	}
	return nil
}

// recv reads one packet and returns its bytes (valid until the next recv)
// and the file descriptors that came with it. Callers hold recvMu.
func (c *Conn) recv(ctx context.Context, bounded bool) ([]byte, []*os.File, error) {
	if err := c.uc.SetReadDeadline(c.deadline(ctx, bounded)); err != nil {
		return nil, nil, fmt.Errorf("set zds read deadline: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.uc.SetReadDeadline(time.Now()) })
	defer stop()
	n, oobn, flags, _, err := c.uc.ReadMsgUnix(c.buf, c.oob)
	files, ferr := parseRights(c.oob[:oobn])
	if err != nil {
		closeAll(files)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("read zds message: %w", err)
	}
	if ferr != nil {
		closeAll(files)
		return nil, nil, ferr
	}
	if n == 0 && oobn == 0 {
		return nil, nil, fmt.Errorf("read zds message: %w", io.EOF)
	}
	if flags&unix.MSG_CTRUNC != 0 {
		closeAll(files)
		return nil, nil, invalid("too many file descriptors in one packet")
	}
	if flags&unix.MSG_TRUNC != 0 || n > MaxMessageSize {
		closeAll(files)
		return nil, nil, invalid("packet larger than %d bytes", MaxMessageSize)
	}
	return c.buf[:n], files, nil
}

func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, invalid("parse control message: %v", err)
	}
	var files []*os.File
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			closeAll(files)
			return nil, invalid("parse SCM_RIGHTS: %v", err)
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("zds-fd-%d", fd)))
		}
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// SendHello sends ztunnel's opening ZdsHello with version.
func (c *Conn) SendHello(ctx context.Context, version zdsapi.Version) error {
	return c.send(ctx, &zdsapi.ZdsHello{Version: version}, nil)
}

// RecvHello waits up to the timeout for ztunnel's ZdsHello; only V1 is
// accepted.
func (c *Conn) RecvHello(ctx context.Context) (*zdsapi.ZdsHello, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	b, files, err := c.recv(ctx, true)
	if err != nil {
		return nil, err
	}
	if len(files) > 0 {
		closeAll(files)
		return nil, invalid("hello carries file descriptors")
	}
	return DecodeHello(b)
}

// SendRequest sends one request. ns must be the pod's network namespace
// file for an add and nil otherwise; the caller keeps ownership of ns (the
// kernel duplicates the descriptor).
func (c *Conn) SendRequest(ctx context.Context, req *zdsapi.WorkloadRequest, ns *os.File) error {
	nfds := 0
	if ns != nil {
		nfds = 1
	}
	if err := validateRequest(req, nfds); err != nil {
		return err
	}
	return c.send(ctx, req, ns)
}

// RecvRequest waits, with no timeout other than ctx, for the agent's next
// request. For an add it returns the namespace file, which the caller owns
// and must close; otherwise the file is nil. A malformed request returns an
// error wrapping ErrInvalidMessage (any descriptors that came with it are
// closed) and the connection stays usable.
func (c *Conn) RecvRequest(ctx context.Context) (*zdsapi.WorkloadRequest, *os.File, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	b, files, err := c.recv(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	req, err := DecodeRequest(b, len(files))
	if err != nil {
		closeAll(files)
		return nil, nil, err
	}
	if len(files) == 1 {
		return req, files[0], nil
	}
	return req, nil, nil
}

// SendResponse sends one response (ztunnel's side).
func (c *Conn) SendResponse(ctx context.Context, resp *zdsapi.WorkloadResponse) error {
	if resp.GetAck() == nil {
		return invalid("response without ack")
	}
	return c.send(ctx, resp, nil)
}

// SendAck acknowledges a request; a non-nil err is reported to the agent.
func (c *Conn) SendAck(ctx context.Context, err error) error {
	ack := &zdsapi.Ack{}
	if err != nil {
		ack.Error = err.Error()
	}
	return c.SendResponse(ctx, &zdsapi.WorkloadResponse{Payload: &zdsapi.WorkloadResponse_Ack{Ack: ack}})
}

// RecvResponse waits up to the timeout for ztunnel's next response.
func (c *Conn) RecvResponse(ctx context.Context) (*zdsapi.WorkloadResponse, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	b, files, err := c.recv(ctx, true)
	if err != nil {
		return nil, err
	}
	if len(files) > 0 {
		closeAll(files)
		return nil, invalid("response carries file descriptors")
	}
	return DecodeResponse(b)
}

// Request sends req (with ns for an add) and waits for its ack. A
// non-empty ack error is returned as *AckError.
func (c *Conn) Request(ctx context.Context, req *zdsapi.WorkloadRequest, ns *os.File) error {
	if err := c.SendRequest(ctx, req, ns); err != nil {
		return err
	}
	resp, err := c.RecvResponse(ctx)
	if err != nil {
		return fmt.Errorf("await ack for %s: %w", RequestKind(req), err)
	}
	if msg := resp.GetAck().GetError(); msg != "" {
		return &AckError{Message: msg}
	}
	return nil
}

// IsTimeout reports whether err is a deadline expiry on the connection.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT)
}

// PeerClosed reports, without blocking or consuming data, whether the peer
// has closed the connection (or it failed). Use it to notice an idle
// ztunnel going away.
func (c *Conn) PeerClosed() bool {
	rc, err := c.uc.SyscallConn()
	if err != nil {
		return true
	}
	closed := false
	cerr := rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil:
			closed = true
		case n == 0:
			closed = true
		}
	})
	return closed || cerr != nil
}
