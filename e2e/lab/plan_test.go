package lab

import (
	"encoding/json"
	"net/netip"
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
		Name:     "wl0001",
		Underlay: netip.MustParsePrefix("100.64.7.0/24"),
		HostIP:   netip.MustParseAddr("100.64.7.254"),
		APIIP:    netip.MustParseAddr("100.64.7.1"),
		Nodes: []NodePlan{
			{Name: "node-1", Netns: "wl0001-node-1", IP: netip.MustParseAddr("100.64.7.11"), PodCIDR: netip.MustParsePrefix("10.244.1.0/24")},
			{Name: "node-2", Netns: "wl0001-node-2", IP: netip.MustParseAddr("100.64.7.12"), PodCIDR: netip.MustParsePrefix("10.244.2.0/24")},
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
