package lab

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// chooseSubnet picks the third octet of the lab's 100.64.x.0/24 underlay: the
// first, starting from a hash of the name, that no host route overlaps. Call
// it under the global lab lock so two labs starting at once differ.
func chooseSubnet(name string) (uint8, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("list host routes: %w", err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("list host addresses: %w", err)
	}
	var used []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if p, ok := prefixOf(r.Dst); ok && p.Bits() > 0 { // not a default route
			used = append(used, p)
		}
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			used = append(used, p)
		}
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	start := h.Sum32() % 250
	for i := uint32(0); i < 250; i++ {
		x := uint8((start + i) % 250)
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, x, 0}), 24)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return x, nil
		}
	}
	return 0, errors.New("no free 100.64.x.0/24 subnet for the lab underlay")
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func addrNet(a netip.Addr, bits int) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}}
}

// nsHandle is an open network namespace with a netlink handle in it.
type nsHandle struct {
	ns netns.NsHandle
	nl *netlink.Handle
}

func openNS(name string) (*nsHandle, error) {
	ns, err := netns.GetFromPath(netnsPath(name)) // a handle only; this thread stays put
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	nl, err := netlink.NewHandleAt(ns)
	if err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("netlink in netns %s: %w", name, err)
	}
	return &nsHandle{ns: ns, nl: nl}, nil
}

func (h *nsHandle) Close() {
	h.nl.Close()
	_ = h.ns.Close() // a read-only handle
}

func (h *nsHandle) up(name string) error {
	l, err := h.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := h.nl.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// buildNetwork creates the lab's namespaces and wires them: the underlay
// bridge, a veth from the host, one veth per control plane and node, the
// nodes' pod CIDR routes (host-gw style) and forwarding. On error the caller
// tears down by prefix.
func buildNetwork(p Plan) error {
	for _, n := range p.Netns() {
		if err := createNetns(n); err != nil {
			return err
		}
	}
	ul, err := openNS(p.UnderlayNetns())
	if err != nil {
		return err
	}
	defer ul.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := ul.nl.LinkAdd(br); err != nil {
		return fmt.Errorf("add underlay bridge: %w", err)
	}
	if err := ul.up("br0"); err != nil {
		return err
	}
	attach := func(name string) error {
		l, err := ul.nl.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find underlay port %s: %w", name, err)
		}
		if err := ul.nl.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("attach %s to the bridge: %w", name, err)
		}
		return ul.nl.LinkSetUp(l)
	}

	// The host's veth, created in the host namespace with its peer in the underlay.
	host := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.HostLink()}, PeerName: "host", PeerNamespace: netlink.NsFd(int(ul.ns))}
	if err := netlink.LinkAdd(host); err != nil {
		return fmt.Errorf("add host veth %s: %w", p.HostLink(), err)
	}
	if err := attach("host"); err != nil {
		return err
	}
	hl, err := netlink.LinkByName(p.HostLink())
	if err != nil {
		return fmt.Errorf("find host veth: %w", err)
	}
	if err := netlink.AddrAdd(hl, addrNet(p.HostIP, p.Underlay.Bits())); err != nil {
		return fmt.Errorf("address host veth: %w", err)
	}
	if err := netlink.LinkSetUp(hl); err != nil {
		return fmt.Errorf("set host veth up: %w", err)
	}

	type member struct {
		port, netns string
		ip          netip.Addr
		routes      []*netlink.Route
		forward     bool
	}
	svc := netip.MustParsePrefix(ServiceCIDR)
	cp := member{port: "cp", netns: p.ControlPlaneNetns(), ip: p.APIIP}
	members := []member{}
	for _, n := range p.Nodes {
		m := member{port: n.Name, netns: n.Netns, ip: n.IP, forward: true}
		// Traffic a node itself sends to a ClusterIP needs a route before
		// kube-proxy's OUTPUT DNAT applies.
		m.routes = append(m.routes, &netlink.Route{Dst: ipNet(svc), Scope: netlink.SCOPE_LINK})
		for _, o := range p.Nodes {
			if o.Name != n.Name {
				m.routes = append(m.routes, &netlink.Route{Dst: ipNet(o.PodCIDR), Gw: o.IP.AsSlice()})
			}
		}
		cp.routes = append(cp.routes, &netlink.Route{Dst: ipNet(n.PodCIDR), Gw: n.IP.AsSlice()})
		members = append(members, m)
	}
	members = append([]member{cp}, members...)
	for _, m := range members {
		if err := wireMember(ul, m.port, m.netns, m.ip, p.Underlay.Bits(), m.routes, attach); err != nil {
			return err
		}
		if m.forward {
			if err := writeSysctl(netnsPath(m.netns), "net/ipv4/ip_forward", "1"); err != nil {
				return err
			}
		}
	}
	return nil
}

func wireMember(ul *nsHandle, port, ns string, ip netip.Addr, bits int, routes []*netlink.Route, attach func(string) error) error {
	h, err := openNS(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(h.ns))}
	if err := ul.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth for %s: %w", ns, err)
	}
	if err := attach(port); err != nil {
		return err
	}
	eth, err := h.nl.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("find eth0 in %s: %w", ns, err)
	}
	if err := h.nl.AddrAdd(eth, addrNet(ip, bits)); err != nil {
		return fmt.Errorf("address eth0 in %s: %w", ns, err)
	}
	if err := h.nl.LinkSetUp(eth); err != nil {
		return fmt.Errorf("set eth0 up in %s: %w", ns, err)
	}
	for _, r := range routes {
		r.LinkIndex = eth.Attrs().Index
		if err := h.nl.RouteAdd(r); err != nil {
			return fmt.Errorf("add route %s in %s: %w", r.Dst, ns, err)
		}
	}
	return nil
}

// deleteHostLink removes the host end of the lab's underlay veth; a missing
// link is success.
func deleteHostLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find host link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete host link %s: %w", name, err)
	}
	return nil
}
