//go:build !linux

package exepages

// Release does nothing outside Linux.
func Release() (int, error) { return 0, nil }
