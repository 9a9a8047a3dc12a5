//go:build !linux

package scale

import (
	"errors"
	"os/exec"
)

func measureProcess(int) (Process, error) {
	return Process{}, errors.New("process measurement is not supported on this platform")
}

func terminate(cmd *exec.Cmd) { cmd.Process.Kill() }
