//go:build !linux

package bench

import "errors"

var errNotLinux = errors.New("the benchmark reads /proc and runs on Linux only")

type proc struct {
	PID  int
	Node string
	Args []string
}

func findProcs(string, string) ([]proc, error) { return nil, errNotLinux }
func cpuSeconds(int) (float64, error)          { return 0, errNotLinux }
func rssMB(int) (float64, error)               { return 0, errNotLinux }
func pinProc(int, []int) error                 { return errNotLinux }
