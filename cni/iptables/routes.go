package iptables

import (
	"fmt"
	"sync"
)

// Routes installs the policy routing that keeps replies to ztunnel's
// inbound connections inside the pod: `ip rule add fwmark 0x111/0xfff
// lookup 100` and `ip route add local 0.0.0.0/0 dev lo table 100`; with
// UDP capture also `ip rule add fwmark 0x112/0xfff lookup 100`, which loops
// the application's marked outbound UDP through lo to TPROXY. Remove
// deletes the UDP rule whether or not capture is configured. Like
// Backend it acts on the calling thread's network namespace. Ensure and
// Remove are idempotent.
type Routes interface {
	Ensure() error
	Remove() error
	Installed() (bool, error)
	// Drift lists the parts Ensure installs that are missing; empty
	// means both are in place.
	Drift() ([]string, error)
}

// Descriptions of the routing parts, as Drift names them.
var (
	driftIPRule    = fmt.Sprintf("ip rule fwmark %s lookup %d missing", markMask(ConnMark), RouteTable)
	driftUDPIPRule = fmt.Sprintf("ip rule fwmark %s lookup %d missing", markMask(UDPMark), RouteTable)
)

func driftRoute(ipv6 bool) string {
	return fmt.Sprintf("route local %s dev lo table %d missing", defaultDst(ipv6), RouteTable)
}

func defaultDst(ipv6 bool) string {
	if ipv6 {
		return "::/0"
	}
	return "0.0.0.0/0"
}

// RouteRecorder is an in-memory Routes for tests.
type RouteRecorder struct {
	// IPv6 makes it stand for the IPv6 routing (::/0 in dumps).
	IPv6 bool
	// CaptureUDP adds the UDP fwmark rule, as NetlinkRoutes.CaptureUDP.
	CaptureUDP bool
	mu         sync.Mutex
	installed  bool
	// ruleGone and routeGone model one part deleted by hand (DeleteRule,
	// DeleteRoute) until the next Ensure.
	ruleGone, routeGone bool
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
	r.ruleGone, r.routeGone = false, false
	return nil
}

// DeleteRule removes the ip rule as `ip rule del` by hand would.
func (r *RouteRecorder) DeleteRule() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ruleGone = true
}

// DeleteRoute removes the table-100 route as `ip route del` by hand
// would.
func (r *RouteRecorder) DeleteRoute() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routeGone = true
}

// Drift implements Routes.
func (r *RouteRecorder) Drift() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	if !r.installed || r.ruleGone {
		out = append(out, driftIPRule)
	}
	if !r.installed || r.routeGone {
		out = append(out, driftRoute(r.IPv6))
	}
	if r.CaptureUDP && !r.IPv6 && !r.installed {
		out = append(out, driftUDPIPRule)
	}
	return out, nil
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
	var s string
	if !r.ruleGone {
		s += fmt.Sprintf("rule fwmark %s lookup %d\n", markMask(ConnMark), RouteTable)
	}
	if r.CaptureUDP && !r.IPv6 {
		s += fmt.Sprintf("rule fwmark %s lookup %d\n", markMask(UDPMark), RouteTable)
	}
	if !r.routeGone {
		s += fmt.Sprintf("route local %s dev lo table %d\n", defaultDst(r.IPv6), RouteTable)
	}
	return s
}
