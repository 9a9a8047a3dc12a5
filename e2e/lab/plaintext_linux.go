package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// plaintextTable is the nftables table the detector adds to every node.
const plaintextTable = "weft_plaintext"

// HBONEPort is the only port enrolled pods may talk to each other on.
const HBONEPort = 15008

// PlaintextDetector counts TCP packets and UDP datagrams that carry payload
// between watched pod addresses on any port other than HBONEPort (TCP
// HBONE over HTTP/2, UDP HBONE over QUIC), in the forward path of
// every node: pod-to-pod traffic crosses it whether the pods share a node
// or not. Enrolled-to-enrolled traffic must leave it at zero; any other
// count is a plaintext leak. Packets with IP options are not inspected.
type PlaintextDetector struct {
	c *Cluster
}

// NewPlaintextDetector installs the detector's table on every node of the
// lab, replacing one left by an earlier detector, with no address watched.
func (c *Cluster) NewPlaintextDetector(ctx context.Context) (*PlaintextDetector, error) {
	d := &PlaintextDetector{c: c}
	for _, n := range c.Plan.Nodes {
		if err := d.nft(ctx, n, plaintextRules()); err != nil {
			return nil, fmt.Errorf("plaintext detector on %s: %w", n.Name, err)
		}
	}
	return d, nil
}

// plaintextRules is the nft script of the detector. A TCP segment carries
// payload when the IP total length exceeds the IP header (20 bytes without
// options) plus the TCP header (data offset × 4); nft cannot add, so there
// is one rule per data offset. HBONE is excluded by two separate return
// rules: nft merges "tcp sport != P tcp dport != P" in one rule into a
// single comparison of both ports that is true unless both equal P, which
// would count HBONE itself.
func plaintextRules() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n", plaintextTable, plaintextTable)
	fmt.Fprintf(&b, "table inet %s {\n", plaintextTable)
	b.WriteString("\tcounter leaked {}\n")
	b.WriteString("\tset watched { type ipv4_addr; }\n")
	b.WriteString("\tset flows { type ipv4_addr . inet_service . ipv4_addr . inet_service; size 256; flags dynamic; }\n")
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority -10; policy accept;\n")
	b.WriteString("\t\tip saddr @watched ip daddr @watched meta l4proto tcp jump payload\n")
	b.WriteString("\t\tip saddr @watched ip daddr @watched meta l4proto udp jump udppayload\n")
	b.WriteString("\t}\n\tchain udppayload {\n")
	// A UDP datagram carries payload when its length exceeds the 8-byte
	// header; QUIC (HBONE over HTTP/3) is on HBONEPort.
	fmt.Fprintf(&b, "\t\tudp dport %d return\n\t\tudp sport %d return\n", HBONEPort, HBONEPort)
	b.WriteString("\t\tudp length > 8 counter name leaked update @flows { ip saddr . udp sport . ip daddr . udp dport }\n")
	b.WriteString("\t}\n\tchain payload {\n")
	fmt.Fprintf(&b, "\t\ttcp dport %d return\n\t\ttcp sport %d return\n", HBONEPort, HBONEPort)
	for doff := 5; doff <= 15; doff++ {
		fmt.Fprintf(&b, "\t\tip hdrlength 5 tcp doff %d ip length > %d counter name leaked update @flows { ip saddr . tcp sport . ip daddr . tcp dport }\n", doff, 20+4*doff)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// Watch adds pod addresses to the watched set on every node.
func (d *PlaintextDetector) Watch(ctx context.Context, addrs ...netip.Addr) error {
	return d.elements(ctx, "add", addrs)
}

// Unwatch removes pod addresses from the watched set on every node.
func (d *PlaintextDetector) Unwatch(ctx context.Context, addrs ...netip.Addr) error {
	return d.elements(ctx, "delete", addrs)
}

func (d *PlaintextDetector) elements(ctx context.Context, verb string, addrs []netip.Addr) error {
	if len(addrs) == 0 {
		return nil
	}
	var list []string
	for _, a := range addrs {
		if !a.Is4() {
			return fmt.Errorf("plaintext detector: %s is not an IPv4 address", a)
		}
		list = append(list, a.String())
	}
	script := fmt.Sprintf("%s element inet %s watched { %s }\n", verb, plaintextTable, strings.Join(list, ", "))
	for _, n := range d.c.Plan.Nodes {
		if err := d.nft(ctx, n, script); err != nil {
			return fmt.Errorf("plaintext detector %s on %s: %w", verb, n.Name, err)
		}
	}
	return nil
}

// Leaked returns the number of plaintext packets counted on all nodes
// since the detector was installed.
func (d *PlaintextDetector) Leaked(ctx context.Context) (uint64, error) {
	var total uint64
	for _, n := range d.c.Plan.Nodes {
		var out bytes.Buffer
		argv := []string{"nft", "-j", "list", "counter", "inet", plaintextTable, "leaked"}
		if err := ExecIn(ctx, netnsPath(n.Netns), nil, argv, nil, &out, &out); err != nil {
			return 0, fmt.Errorf("plaintext detector on %s: %w: %s", n.Name, err, strings.TrimSpace(out.String()))
		}
		p, err := parseCounter(out.Bytes())
		if err != nil {
			return 0, fmt.Errorf("plaintext detector on %s: %w", n.Name, err)
		}
		total += p
	}
	return total, nil
}

// Flows lists the leaked flows seen so far on every node, as
// "node: src:port -> dst:port" (at most 256 per node), to say what leaked.
func (d *PlaintextDetector) Flows(ctx context.Context) ([]string, error) {
	var flows []string
	for _, n := range d.c.Plan.Nodes {
		var out bytes.Buffer
		argv := []string{"nft", "-j", "list", "set", "inet", plaintextTable, "flows"}
		if err := ExecIn(ctx, netnsPath(n.Netns), nil, argv, nil, &out, &out); err != nil {
			return nil, fmt.Errorf("plaintext detector on %s: %w: %s", n.Name, err, strings.TrimSpace(out.String()))
		}
		fs, err := parseFlows(out.Bytes())
		if err != nil {
			return nil, fmt.Errorf("plaintext detector on %s: %w", n.Name, err)
		}
		for _, f := range fs {
			flows = append(flows, n.Name+": "+f)
		}
	}
	return flows, nil
}

// parseFlows reads the elements of the flows set from `nft -j list set`:
// each is a concatenation [saddr, sport, daddr, dport].
func parseFlows(js []byte) ([]string, error) {
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("parse nft set: %w", err)
	}
	var out []string
	for _, e := range doc.Nftables {
		if e.Set == nil {
			continue
		}
		for _, raw := range e.Set.Elem {
			var el struct {
				Concat []any `json:"concat"`
				Elem   *struct {
					Val struct {
						Concat []any `json:"concat"`
					} `json:"val"`
				} `json:"elem"`
			}
			if err := json.Unmarshal(raw, &el); err != nil {
				return nil, fmt.Errorf("parse nft set element %s: %w", raw, err)
			}
			c := el.Concat
			if el.Elem != nil {
				c = el.Elem.Val.Concat
			}
			if len(c) != 4 {
				return nil, fmt.Errorf("parse nft set element %s: want 4 parts", raw)
			}
			out = append(out, fmt.Sprintf("%v:%v -> %v:%v", c[0], c[1], c[2], c[3]))
		}
	}
	return out, nil
}

// parseCounter reads the packet count of `nft -j list counter` output.
func parseCounter(js []byte) (uint64, error) {
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return 0, fmt.Errorf("parse nft counter: %w", err)
	}
	for _, e := range doc.Nftables {
		if e.Counter != nil {
			return e.Counter.Packets, nil
		}
	}
	return 0, fmt.Errorf("parse nft counter: no counter in %q", js)
}

// Close removes the detector's table from every node.
func (d *PlaintextDetector) Close(ctx context.Context) error {
	var first error
	for _, n := range d.c.Plan.Nodes {
		if err := d.nft(ctx, n, fmt.Sprintf("delete table inet %s\n", plaintextTable)); err != nil && first == nil {
			first = fmt.Errorf("plaintext detector on %s: %w", n.Name, err)
		}
	}
	return first
}

func (d *PlaintextDetector) nft(ctx context.Context, n NodePlan, script string) error {
	return nftIn(ctx, netnsPath(n.Netns), script)
}

// nftIn runs an nft script inside the network namespace at path.
func nftIn(ctx context.Context, path, script string) error {
	var out bytes.Buffer
	if err := ExecIn(ctx, path, nil, []string{"nft", "-f", "-"}, strings.NewReader(script), &out, &out); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
