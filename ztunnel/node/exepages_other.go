//go:build !linux

package node

// releaseExePages does nothing outside Linux.
func releaseExePages() (int, error) { return 0, nil }
