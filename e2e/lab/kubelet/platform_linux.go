package kubelet

import "syscall"

func platformSupported() error { return nil }

// shimProcAttr puts a container in its own process group and kills it if
// kubelet-lite dies.
func shimProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
