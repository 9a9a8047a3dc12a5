//go:build !linux

package kubelet

import (
	"context"
	"io"
	"os/exec"

	"errors"
	"fmt"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"os"
	"syscall"
)

var errNotSupported = errors.New("kubelet-lite needs Linux (network and mount namespaces)")

func platformSupported() error { return errNotSupported }

func createNetns(string) error { return errNotSupported }

func removeNetns(string) error { return nil }

func setLoopbackUp(string) error { return errNotSupported }

func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return errNotSupported
}

// ShimMain is the entry of the container shim; it needs Linux.
func ShimMain([]string) int {
	fmt.Fprintln(os.Stderr, "kubelet-shim:", errNotSupported)
	return 126
}

func shimProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func releaseSharedMount(string) {}

func bindNetns(string, string) error { return errNotSupported }

func (k *kubelet) setupNetnsView() error { return errNotSupported }

func runWithTTY(context.Context, *exec.Cmd, io.Reader, io.Writer, <-chan remotecommand.TerminalSize) error {
	return errNotSupported
}
