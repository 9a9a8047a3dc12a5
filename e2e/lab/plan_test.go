package lab

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"weft", true},
		{"wl1a2b", true},
		{"a", true},
		{"abcdefghij", true},
		{"abcdefghijk", false}, // the host link name would pass 15 bytes
		{"", false},
		{"1lab", false},
		{"Lab", false},
		{"my-lab", false}, // "-" separates the prefix from the rest
		{"bin", false},    // _output/lab/bin holds the lab's binaries
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateName(tt.name); (err == nil) != tt.ok {
				t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
	if err := ValidateName(NewName()); err != nil {
		t.Errorf("NewName gives an invalid name: %v", err)
	}
}

func TestNewPlan(t *testing.T) {
	p, err := NewPlan("wl0001", 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := Plan{
		Name:        "wl0001",
		Underlay:    netip.MustParsePrefix("100.64.7.0/24"),
		HostIP:      netip.MustParseAddr("100.64.7.254"),
		APIIP:       netip.MustParseAddr("100.64.7.1"),
		ClusterCIDR: netip.MustParsePrefix("10.7.0.0/16"),
		Nodes: []NodePlan{
			{Name: "node-1", Netns: "wl0001-node-1", IP: netip.MustParseAddr("100.64.7.11"), PodCIDR: netip.MustParsePrefix("10.7.1.0/24")},
			{Name: "node-2", Netns: "wl0001-node-2", IP: netip.MustParseAddr("100.64.7.12"), PodCIDR: netip.MustParsePrefix("10.7.2.0/24")},
		},
	}
	if diff := cmp.Diff(want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if got, want := p.Netns(), []string{"wl0001-ul", "wl0001-cp", "wl0001-node-1", "wl0001-node-2"}; !cmp.Equal(got, want) {
		t.Errorf("Netns() = %v, want %v", got, want)
	}
	if got := p.APIServerURL(); got != "https://100.64.7.1:6443" {
		t.Errorf("APIServerURL() = %q", got)
	}
	if len(p.HostLink()) > 15 {
		t.Errorf("host link name %q is longer than IFNAMSIZ-1", p.HostLink())
	}
	for _, bad := range []int{0, 201} {
		if _, err := NewPlan("wl", bad, 1); err == nil {
			t.Errorf("NewPlan with %d nodes: no error", bad)
		}
	}
}

// TestPlanPodRangesPerLab checks that labs on different underlay subnets
// (which chooseSubnet guarantees for labs running at once) never share pod
// addresses, that no pod range overlaps the services, and that every node's
// range lies in the cluster CIDR handed to kube-controller-manager and
// kube-proxy.
func TestPlanPodRangesPerLab(t *testing.T) {
	svc := netip.MustParsePrefix(ServiceCIDR)
	seen := map[netip.Prefix]uint8{}
	for s := 0; s < 255; s++ {
		p, err := NewPlan("wl", 3, uint8(s))
		if err != nil {
			t.Fatalf("subnet %d: %v", s, err)
		}
		if p.ClusterCIDR.Overlaps(svc) {
			t.Errorf("subnet %d: cluster CIDR %s overlaps services %s", s, p.ClusterCIDR, svc)
		}
		if prev, dup := seen[p.ClusterCIDR]; dup {
			t.Errorf("subnets %d and %d share cluster CIDR %s", prev, s, p.ClusterCIDR)
		}
		seen[p.ClusterCIDR] = uint8(s)
		for _, n := range p.Nodes {
			if !p.ClusterCIDR.Contains(n.PodCIDR.Addr()) || n.PodCIDR.Bits() != 24 {
				t.Errorf("subnet %d: %s pod CIDR %s not a /24 of %s", s, n.Name, n.PodCIDR, p.ClusterCIDR)
			}
		}
	}
	if _, err := NewPlan("wl", 1, 255); err == nil {
		t.Error("NewPlan with subnet 255: no error")
	}
	p, _ := NewPlan("wl", 1, 42)
	want := "--cluster-cidr=10.42.0.0/16"
	for name, args := range map[string][]string{
		"kube-controller-manager": controllerManagerArgs("kc", &pki{}, p.ClusterCIDR),
		"kube-proxy":              kubeProxyArgs(p.Nodes[0], "kc", p.ClusterCIDR),
	} {
		if !slices.Contains(args, want) {
			t.Errorf("%s args %v lack %s", name, args, want)
		}
	}
}

func TestPTPConflist(t *testing.T) {
	b, err := ptpConflist("10.244.1.0/24", "/state/ipam")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		CNIVersion string `json:"cniVersion"`
		Plugins    []struct {
			Type   string `json:"type"`
			IPMasq bool   `json:"ipMasq"`
			IPAM   struct {
				Type    string `json:"type"`
				DataDir string `json:"dataDir"`
				Ranges  [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.CNIVersion != "1.0.0" || len(conf.Plugins) != 1 {
		t.Fatalf("conflist = %s", b)
	}
	pl := conf.Plugins[0]
	if pl.Type != "ptp" || pl.IPMasq || pl.IPAM.Type != "host-local" || pl.IPAM.DataDir != "/state/ipam" || pl.IPAM.Ranges[0][0].Subnet != "10.244.1.0/24" {
		t.Errorf("conflist = %s", b)
	}
}

func TestCoreDNSYAML(t *testing.T) {
	y := corednsYAML()
	for _, want := range []string{"clusterIP: " + ClusterDNS, "image: " + CoreDNSImage + ":" + CoreDNSVersion, "kubernetes " + ClusterDomain + " "} {
		if !strings.Contains(y, want) {
			t.Errorf("CoreDNS manifest lacks %q", want)
		}
	}
	if strings.Contains(y, "{{") {
		t.Error("CoreDNS manifest has an unrendered placeholder")
	}
}
