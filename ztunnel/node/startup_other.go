//go:build !linux

package node

import "errors"

// releaseStartupPages is only supported on Linux.
func releaseStartupPages() (int64, error) {
	return 0, errors.New("releasing start-up pages is only supported on linux")
}
