package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// executor runs exec requests inside a container's namespaces through the
// shim's exec mode.
type executor struct{ s *apiServer }

var _ remotecommand.Executor = (*executor)(nil)

// ExecInContainer implements remotecommand.Executor. name is "ns/pod".
// With tty the command runs on a new pseudo-terminal.
func (e *executor) ExecInContainer(ctx context.Context, name, _ string, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	ns, pod, _ := strings.Cut(name, "/")
	_, c, err := e.s.findContainer(ns, pod, container)
	if err != nil {
		return err
	}
	pid := c.pid()
	if pid == 0 {
		return fmt.Errorf("container %s is not running", container)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	x := exec.CommandContext(ctx, e.s.k.cfg.ShimPath, append([]string{shimCommand, "exec", strconv.Itoa(pid), "--"}, cmd...)...)
	if tty {
		err = runWithTTY(ctx, x, in, out, resize)
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
		}
		return err
	}
	if in != nil {
		x.Stdin = in
	}
	if out != nil {
		x.Stdout = out
	}
	if errw != nil {
		x.Stderr = errw
	}
	x.WaitDelay = time.Second // stdin may stay open after the command exits
	err = x.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil
	}
	return err
}

// forwarder dials ports on the pod's loopback inside its netns.
type forwarder struct {
	s       *apiServer
	ns, pod string
}

var _ portforward.PortForwarder = (*forwarder)(nil)

// PortForward implements portforward.PortForwarder.
func (f *forwarder) PortForward(ctx context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	defer func() { _ = stream.Close() }()
	w, _, err := f.s.findContainer(f.ns, f.pod, "")
	if err != nil {
		return err
	}
	w.mu.Lock()
	sb := w.sandbox
	w.mu.Unlock()
	if sb == nil {
		return fmt.Errorf("pod %s/%s has no network yet", f.ns, f.pod)
	}
	host := "127.0.0.1"
	conn, err := dialInNetns(ctx, sb.NetNS, "tcp4", net.JoinHostPort(host, strconv.Itoa(int(port))))
	if err != nil {
		return fmt.Errorf("dial port %d in pod %s/%s: %w", port, f.ns, f.pod, err)
	}
	defer func() { _ = conn.Close() }()
	// Copy errors are how either side hangs up; there is no one to tell.
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	})
	_, _ = io.Copy(stream, conn)
	_ = stream.Close()
	_ = conn.Close()
	wg.Wait()
	return nil
}
