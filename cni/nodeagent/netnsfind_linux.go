//go:build linux

package nodeagent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/weftmesh/weft/pkg/netns"
)

// procFinder finds a running pod's namespace the way Istio's node agent
// does, but checks that what it finds is on this node. It looks first in
// the runtime's netns directories (bind mounts named by CNI ADD), then
// scans /proc for a process whose namespace holds the pod's IP. A
// candidate counts only if the interface holding the IP is linked to the
// agent's own namespace (the node's: the agent runs with hostNetwork), so
// a pod of another cluster sharing the host and the address (two labs) is
// never taken. A candidate whose interface names no linked namespace is
// taken only when no linked one exists.
type procFinder struct {
	procRoot  string   // "" means /proc
	netnsDirs []string // scanned before /proc
}

var _ netnsFinder = procFinder{}

func wantIPs(ips []string) map[netip.Addr]bool {
	want := map[netip.Addr]bool{}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil {
			want[a.Unmap()] = true
		}
	}
	return want
}

// Find implements netnsFinder.
func (f procFinder) Find(ips []string) (*netns.NetNS, error) {
	want := wantIPs(ips)
	if len(want) == 0 {
		return nil, fmt.Errorf("find netns: no valid pod ip in %v", ips)
	}
	self, err := netns.Open("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	defer func() { _ = self.Close() }()
	selfIno, _ := self.Inode()

	seen := map[uint64]bool{selfIno: true}
	var weak *netns.NetNS
	try := func(path string) *netns.NetNS {
		st, err := os.Stat(path)
		if err != nil {
			return nil
		}
		ino := inodeOf(st)
		if seen[ino] {
			return nil
		}
		seen[ino] = true
		ns, err := netns.Open(path)
		if err != nil {
			return nil // the process or mount went away
		}
		switch nodeMatchOf(ns, self, want) {
		case matchNode:
			return ns
		case matchWeak:
			if weak == nil {
				weak = ns
				return nil
			}
		}
		_ = ns.Close()
		return nil
	}
	found := func(ns *netns.NetNS) (*netns.NetNS, error) {
		if weak != nil && weak != ns {
			_ = weak.Close()
		}
		return ns, nil
	}

	for _, dir := range f.netnsDirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if ns := try(filepath.Join(dir, e.Name())); ns != nil {
				return found(ns)
			}
		}
	}
	root := f.procRoot
	if root == "" {
		root = "/proc"
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		if weak != nil {
			return weak, nil
		}
		return nil, fmt.Errorf("find netns: %w", err)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if ns := try(filepath.Join(root, e.Name(), "ns", "net")); ns != nil {
			return found(ns)
		}
	}
	if weak != nil {
		return weak, nil
	}
	return nil, fmt.Errorf("find netns for %v: %w", ips, ErrNetnsNotFound)
}

// Holds implements netnsFinder.
func (procFinder) Holds(ns *netns.NetNS, ips []string) bool {
	self, err := netns.Open("/proc/self/ns/net")
	if err != nil {
		return false
	}
	defer func() { _ = self.Close() }()
	return nodeMatchOf(ns, self, wantIPs(ips)) != matchNone
}

// nodeMatchOf judges whether ns holds one of want on an interface linked
// to the namespace node.
func nodeMatchOf(ns, node *netns.NetNS, want map[netip.Addr]bool) nodeMatch {
	m := matchNone
	_ = ns.Do(func() error {
		addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || !want[ip.Unmap()] {
				continue
			}
			link, err := netlink.LinkByIndex(a.LinkIndex)
			if err != nil {
				continue
			}
			linked := link.Attrs().NetNsID
			if linked < 0 {
				if m < matchWeak {
					m = matchWeak
				}
				continue
			}
			// The id this namespace gives the node's namespace; -1 when it
			// has none, that is when nothing here links to the node.
			nodeID, err := netlink.GetNetNsIdByFd(node.Fd())
			if err == nil && nodeID >= 0 && nodeID == linked {
				m = matchNode
				return nil
			}
		}
		return nil
	})
	return m
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
