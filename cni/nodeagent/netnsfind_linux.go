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

// procFinder scans /proc for a process whose network namespace holds the
// pod's IP, as Istio's node agent does for pods that already run.
type procFinder struct {
	procRoot string
}

var _ netnsFinder = procFinder{}

// Find implements netnsFinder.
func (f procFinder) Find(ips []string) (*netns.NetNS, error) {
	want := map[netip.Addr]bool{}
	for _, s := range ips {
		if a, err := netip.ParseAddr(s); err == nil {
			want[a.Unmap()] = true
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("find netns: no valid pod ip in %v", ips)
	}
	self, err := netns.Open("/proc/self/ns/net")
	if err != nil {
		return nil, err
	}
	defer func() { _ = self.Close() }()
	selfIno, _ := self.Inode()

	root := f.procRoot
	if root == "" {
		root = "/proc"
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("find netns: %w", err)
	}
	seen := map[uint64]bool{selfIno: true}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		path := filepath.Join(root, e.Name(), "ns", "net")
		var st os.FileInfo
		if st, err = os.Stat(path); err != nil {
			continue
		}
		ino := inodeOf(st)
		if seen[ino] {
			continue
		}
		seen[ino] = true
		ns, err := netns.Open(path)
		if err != nil {
			continue // the process went away
		}
		if holdsIP(ns, want) {
			return ns, nil
		}
		_ = ns.Close()
	}
	return nil, fmt.Errorf("find netns for %v: %w", ips, ErrNetnsNotFound)
}

func holdsIP(ns *netns.NetNS, want map[netip.Addr]bool) bool {
	found := false
	_ = ns.Do(func() error {
		addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && want[ip.Unmap()] {
				found = true
				return nil
			}
		}
		return nil
	})
	return found
}
func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
