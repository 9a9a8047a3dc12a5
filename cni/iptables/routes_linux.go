//go:build linux

package iptables

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// NetlinkRoutes implements Routes with netlink in the calling thread's
// network namespace, for IPv4, or with IPv6 set for IPv6 (`ip -6 rule`,
// `ip -6 route ... local ::/0`).
type NetlinkRoutes struct {
	IPv6 bool
	// CaptureUDP also installs `ip rule fwmark 0x112/0xfff lookup 100`
	// (IPv4 only), which Config.CaptureUDP's rules need.
	CaptureUDP bool
}

var _ Routes = NetlinkRoutes{}

func (n NetlinkRoutes) family() int {
	if n.IPv6 {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// udp reports whether the UDP fwmark rule belongs to this family.
func (n NetlinkRoutes) udp() bool { return !n.IPv6 }

func (n NetlinkRoutes) markRule(mark uint32) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = n.family()
	r.Mark = mark
	mask := uint32(MarkMask)
	r.Mask = &mask
	r.Table = RouteTable
	return r
}

func (n NetlinkRoutes) localRoute() (*netlink.Route, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("find lo: %w", err)
	}
	dst := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	if n.IPv6 {
		dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return &netlink.Route{
		Family:    n.family(),
		LinkIndex: lo.Attrs().Index,
		Dst:       dst,
		Type:      unix.RTN_LOCAL,
		Scope:     netlink.SCOPE_HOST,
		Table:     RouteTable,
	}, nil
}

func (n NetlinkRoutes) ruleInstalled() (bool, error) { return n.markRuleInstalled(ConnMark) }

func (n NetlinkRoutes) markRuleInstalled(mark uint32) (bool, error) {
	rules, err := netlink.RuleListFiltered(n.family(), &netlink.Rule{Table: RouteTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, fmt.Errorf("list ip rules: %w", err)
	}
	for _, r := range rules {
		if r.Mark == mark && r.Mask != nil && *r.Mask == MarkMask {
			return true, nil
		}
	}
	return false, nil
}

// ensureMarkRule adds the fwmark rule for mark unless present.
func (n NetlinkRoutes) ensureMarkRule(mark uint32) error {
	ok, err := n.markRuleInstalled(mark)
	if err != nil || ok {
		return err
	}
	if err := netlink.RuleAdd(n.markRule(mark)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add ip rule fwmark %s lookup %d: %w", markMask(int(mark)), RouteTable, err)
	}
	return nil
}

// removeMarkRule deletes every fwmark rule for mark.
func (n NetlinkRoutes) removeMarkRule(mark uint32) error {
	for {
		ok, err := n.markRuleInstalled(mark)
		if err != nil || !ok {
			return err
		}
		if err := netlink.RuleDel(n.markRule(mark)); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete ip rule fwmark %s: %w", markMask(int(mark)), err)
		}
	}
}

// Ensure implements Routes.
func (n NetlinkRoutes) Ensure() error {
	if err := n.ensureMarkRule(ConnMark); err != nil {
		return err
	}
	if n.CaptureUDP && n.udp() {
		if err := n.ensureMarkRule(UDPMark); err != nil {
			return err
		}
	}
	rt, err := n.localRoute()
	if err != nil {
		return err
	}
	if err := netlink.RouteReplace(rt); err != nil {
		return fmt.Errorf("add local default route in table %d: %w", RouteTable, err)
	}
	return nil
}

// Remove implements Routes.
func (n NetlinkRoutes) Remove() error {
	var errs []error
	if err := n.removeMarkRule(ConnMark); err != nil {
		errs = append(errs, err)
	}
	if n.udp() {
		if err := n.removeMarkRule(UDPMark); err != nil {
			errs = append(errs, err)
		}
	}
	rt, err := n.localRoute()
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := netlink.RouteDel(rt); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("delete local route in table %d: %w", RouteTable, err))
	}
	return errors.Join(errs...)
}

// Drift implements Routes.
func (n NetlinkRoutes) Drift() ([]string, error) {
	var out []string
	ok, err := n.ruleInstalled()
	if err != nil {
		return nil, err
	}
	if !ok {
		out = append(out, driftIPRule)
	}
	if n.CaptureUDP && n.udp() {
		ok, err := n.markRuleInstalled(UDPMark)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, driftUDPIPRule)
		}
	}
	routes, err := netlink.RouteListFiltered(n.family(), &netlink.Route{Table: RouteTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list routes in table %d: %w", RouteTable, err)
	}
	found := false
	for _, r := range routes {
		if r.Type == unix.RTN_LOCAL && (r.Dst == nil || r.Dst.IP.IsUnspecified() && maskOnes(r.Dst) == 0) {
			found = true
		}
	}
	if !found {
		out = append(out, driftRoute(n.IPv6))
	}
	return out, nil
}

func maskOnes(n *net.IPNet) int {
	if n == nil {
		return 0
	}
	ones, _ := n.Mask.Size()
	return ones
}

// Installed implements Routes.
func (n NetlinkRoutes) Installed() (bool, error) {
	if ok, err := n.ruleInstalled(); err != nil || ok {
		return ok, err
	}
	routes, err := netlink.RouteListFiltered(n.family(), &netlink.Route{Table: RouteTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false, fmt.Errorf("list routes in table %d: %w", RouteTable, err)
	}
	return len(routes) > 0, nil
}
