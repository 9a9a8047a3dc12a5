//go:build !linux

package loadgen

import "errors"

// RaiseFileLimit is not supported off Linux.
func RaiseFileLimit(uint64) (uint64, error) {
	return 0, errors.New("raising the open-file limit is supported on Linux only")
}
