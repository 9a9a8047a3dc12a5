package loadgen

import (
	"fmt"
	"syscall"
)

// RaiseFileLimit lifts the open-file limit to want (soft and hard) when the
// process may, or else the soft limit to the hard one, and returns the
// soft limit in force.
func RaiseFileLimit(want uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("get open-file limit: %w", err)
	}
	if l.Cur >= want {
		return l.Cur, nil
	}
	n := syscall.Rlimit{Cur: max(want, l.Cur), Max: max(want, l.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err == nil {
		return n.Cur, nil
	}
	n = syscall.Rlimit{Cur: l.Max, Max: l.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n); err != nil {
		return l.Cur, fmt.Errorf("raise open-file limit: %w", err)
	}
	return n.Cur, nil
}
