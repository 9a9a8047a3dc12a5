package nodeagent

import (
	"errors"

	"github.com/weftmesh/weft/pkg/netns"
)

// netnsFinder finds the network namespace of a running pod.
type netnsFinder interface {
	// Find returns an open handle on a namespace of this node holding one
	// of ips.
	Find(ips []string) (*netns.NetNS, error)
	// Holds reports whether ns holds one of ips and belongs to this node
	// (see nodeMatch), for a namespace found another way (a path
	// remembered from CNI ADD).
	Holds(ns *netns.NetNS, ips []string) bool
}

// nsOpener opens a namespace by path (pkg/netns.Open in production).
type nsOpener func(path string) (*netns.NetNS, error)

// ErrNetnsNotFound means no namespace of this node holds the pod's IP.
var ErrNetnsNotFound = errors.New("no network namespace on this node holds the pod ip")

// DefaultNetnsDir is where container runtimes (and the lab's kubelet)
// bind-mount pod network namespaces, as CNI ADD names them.
const DefaultNetnsDir = "/var/run/netns"

// nodeMatch is how sure a scan is that a namespace holding the pod's IP is
// the pod's on this node.
type nodeMatch int

const (
	// matchNone: the IP is not there, or the interface holding it is
	// linked (veth peer, ipvlan/macvlan parent) to a namespace other than
	// this node's: another node's pod with the same address (two clusters
	// on one host, as in the lab).
	matchNone nodeMatch = iota
	// matchWeak: the IP is there but its interface names no linked
	// namespace (a peer in the same namespace, or a device without one).
	matchWeak
	// matchNode: the interface holding the IP is linked to this node's
	// namespace, as the primary CNI's veth is.
	matchNode
)
