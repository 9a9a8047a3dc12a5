//go:build !linux

package exepages

import "errors"

// Release does nothing outside Linux.
func Release() (int, error) { return 0, nil }

// Resident is not supported outside Linux.
func Resident(pid int) (resident, mapped int, err error) {
	return 0, 0, errors.New("resident executable pages: only supported on Linux")
}
