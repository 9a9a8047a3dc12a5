package kubelet

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// openPTY allocates a pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		_ = m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		_ = m.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		_ = m.Close()
		return nil, nil, fmt.Errorf("open pty slave: %w", err)
	}
	return m, s, nil
}

// runWithTTY runs cmd on a new pseudo-terminal whose output goes to out,
// feeding it in and applying terminal resizes.
func runWithTTY(ctx context.Context, cmd *exec.Cmd, in io.Reader, out io.Writer, resize <-chan remotecommand.TerminalSize) error {
	master, slave, err := openPTY()
	if err != nil {
		return err
	}
	defer func() { _ = master.Close() }()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	_ = slave.Close() // the command holds its own descriptors
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	if resize != nil {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				case sz, ok := <-resize:
					if !ok {
						return
					}
					_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
				}
			}
		})
	}
	if in != nil {
		// Ends when the client closes stdin or the master is closed.
		go io.Copy(master, in) //nolint:errcheck // owned by the stream's lifetime
	}
	if out != nil {
		wg.Go(func() { _, _ = io.Copy(out, master) }) // EIO once the command exits
	} else {
		wg.Go(func() { _, _ = io.Copy(io.Discard, master) })
	}
	werr := cmd.Wait()
	close(done)
	wg.Wait()
	return werr
}
