package nodeagent

import (
	"errors"

	"github.com/weftmesh/weft/pkg/netns"
)

// netnsFinder finds the network namespace of a running pod.
type netnsFinder interface {
	// Find returns an open handle on the namespace holding one of ips.
	Find(ips []string) (*netns.NetNS, error)
}

// nsOpener opens a namespace by path (pkg/netns.Open in production).
type nsOpener func(path string) (*netns.NetNS, error)

// ErrNetnsNotFound means no process on the node is in a namespace with the
// pod's IP.
var ErrNetnsNotFound = errors.New("no network namespace on this node holds the pod ip")
