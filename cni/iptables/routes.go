package iptables

import (
	"fmt"
	"sync"
)

// Routes installs the policy routing that keeps replies to ztunnel's
// inbound connections inside the pod: `ip rule add fwmark 0x111/0xfff
// lookup 100` and `ip route add local 0.0.0.0/0 dev lo table 100`. Like
// Backend it acts on the calling thread's network namespace. Ensure and
// Remove are idempotent.
type Routes interface {
	Ensure() error
	Remove() error
	Installed() (bool, error)
}

// RouteRecorder is an in-memory Routes for tests.
type RouteRecorder struct {
	mu        sync.Mutex
	installed bool
	// Ops lists mutating calls: "ensure", "remove".
	Ops []string
}

var _ Routes = (*RouteRecorder)(nil)

// Ensure implements Routes.
func (r *RouteRecorder) Ensure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Ops = append(r.Ops, "ensure")
	r.installed = true
	return nil
}

// Remove implements Routes.
func (r *RouteRecorder) Remove() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Ops = append(r.Ops, "remove")
	r.installed = false
	return nil
}

// Installed implements Routes.
func (r *RouteRecorder) Installed() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.installed, nil
}

// Dump renders the installed routing like `ip rule`/`ip route`, for golden
// files.
func (r *RouteRecorder) Dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.installed {
		return ""
	}
	return fmt.Sprintf("rule fwmark %s lookup %d\nroute local 0.0.0.0/0 dev lo table %d\n",
		markMask(ConnMark), RouteTable, RouteTable)
}
