package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
)

// Fixed ranges inside every lab. They live only inside the lab's own
// namespaces, so two labs may use the same ones. Pod ranges differ per lab
// (Plan.ClusterCIDR): pods are processes on the one host, and a node agent
// that scans the host's processes for a pod's IP must not find another
// lab's pod.
const (
	// ServiceCIDR is the Service ClusterIP range.
	ServiceCIDR = "10.96.0.0/16"
	// APIServiceIP is the ClusterIP of the default/kubernetes Service.
	APIServiceIP = "10.96.0.1"
	// ClusterDNS is the ClusterIP of the kube-system/kube-dns Service.
	ClusterDNS = "10.96.0.10"
	// ClusterDomain is the cluster's DNS domain.
	ClusterDomain = "cluster.local"
	// APIPort is the API server's secure port on its underlay address.
	APIPort = 6443
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

// NewName returns a fresh lab name: "wl" and four random hex digits.
func NewName() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return "wl" + hex.EncodeToString(b[:])
}

// reservedNames are directories beside the labs' state dirs.
var reservedNames = map[string]bool{"bin": true}

// ValidateName reports whether name can prefix every object of a lab: a
// lower-case letter, then up to nine lower-case letters or digits, and not
// a reserved name ("bin").
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("lab name %q: want a lower-case letter then at most 9 lower-case letters or digits", name)
	}
	if reservedNames[name] {
		return fmt.Errorf("lab name %q is reserved", name)
	}
	return nil
}

// Plan is the addressing and naming of one lab. It is pure data, computed
// from the lab name, the node count and the underlay subnet.
type Plan struct {
	Name     string
	Underlay netip.Prefix // the lab's /24 on the underlay bridge
	HostIP   netip.Addr   // the host's end of the host veth
	APIIP    netip.Addr   // the control plane's underlay address
	// ClusterCIDR holds every node's pod CIDR: 10.C.0.0/16, with C derived
	// from the underlay subnet (ClusterOctet), so labs running at the same
	// time never share pod addresses.
	ClusterCIDR netip.Prefix
	Nodes       []NodePlan
}

// NodePlan is one node's names and addresses.
type NodePlan struct {
	Name    string       // Kubernetes Node name, e.g. "node-1"
	Netns   string       // network namespace name
	IP      netip.Addr   // underlay address
	PodCIDR netip.Prefix // pod range, the N-th /24 of the plan's ClusterCIDR
}

// serviceOctet is the second octet of ServiceCIDR, which no cluster CIDR
// may overlap.
const serviceOctet = 96

// ClusterOctet maps the underlay subnet (the x of 100.64.x.0/24) to the
// second octet of the lab's cluster CIDR 10.C.0.0/16: C is x, or x+1 from
// the service range's octet on, so distinct subnets give distinct,
// service-free pod ranges.
func ClusterOctet(subnet uint8) uint8 {
	if subnet < serviceOctet {
		return subnet
	}
	return subnet + 1
}

// NewPlan lays out a lab called name with n nodes on the underlay subnet
// 100.64.<subnet>.0/24, with pods in 10.<ClusterOctet(subnet)>.0.0/16. The
// lab picks a subnet no other running lab uses (chooseSubnet), so its pod
// ranges are its own too. subnet must be below 255.
func NewPlan(name string, nodes int, subnet uint8) (Plan, error) {
	if err := ValidateName(name); err != nil {
		return Plan{}, err
	}
	if nodes < 1 || nodes > 200 {
		return Plan{}, fmt.Errorf("node count %d: want 1 to 200", nodes)
	}
	if subnet == 255 {
		return Plan{}, fmt.Errorf("underlay subnet %d: want 0 to 254", subnet)
	}
	c := ClusterOctet(subnet)
	base := [4]byte{100, 64, subnet, 0}
	at := func(last byte) netip.Addr { b := base; b[3] = last; return netip.AddrFrom4(b) }
	p := Plan{
		Name:        name,
		Underlay:    netip.PrefixFrom(at(0), 24),
		HostIP:      at(254),
		APIIP:       at(1),
		ClusterCIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, c, 0, 0}), 16),
	}
	for i := 1; i <= nodes; i++ {
		p.Nodes = append(p.Nodes, NodePlan{
			Name:    fmt.Sprintf("node-%d", i),
			Netns:   fmt.Sprintf("%s-node-%d", name, i),
			IP:      at(byte(10 + i)),
			PodCIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, c, byte(i), 0}), 24),
		})
	}
	return p, nil
}

// UnderlayNetns is the namespace holding the underlay bridge.
func (p Plan) UnderlayNetns() string { return p.Name + "-ul" }

// ControlPlaneNetns is the namespace running etcd and the control plane.
func (p Plan) ControlPlaneNetns() string { return p.Name + "-cp" }

// PodNetnsPrefix is the prefix kubelet-lite gives pod namespaces.
func (p Plan) PodNetnsPrefix() string { return p.Name + "-pod" }

// HostLink is the host end of the veth into the underlay.
func (p Plan) HostLink() string { return p.Name + "-host" }

// APIServerURL is the API server's URL as seen from the host and the nodes.
func (p Plan) APIServerURL() string {
	return fmt.Sprintf("https://%s", netip.AddrPortFrom(p.APIIP, APIPort))
}

// Netns lists every network namespace the lab itself creates, underlay first.
func (p Plan) Netns() []string {
	out := []string{p.UnderlayNetns(), p.ControlPlaneNetns()}
	for _, n := range p.Nodes {
		out = append(out, n.Netns)
	}
	return out
}
