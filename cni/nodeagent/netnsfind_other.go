//go:build !linux

package nodeagent

import (
	"errors"

	"github.com/weftmesh/weft/pkg/netns"
)

type procFinder struct {
	procRoot  string
	netnsDirs []string
}

// Find is not supported on this system.
func (procFinder) Find(ips []string) (*netns.NetNS, error) {
	return nil, errors.New("finding pod network namespaces is only supported on linux")
}

// Holds is not supported on this system.
func (procFinder) Holds(*netns.NetNS, []string) bool { return false }
