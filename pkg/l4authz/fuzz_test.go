package l4authz

import (
	"net/netip"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/weftmesh/weft/pkg/api/securityapi"
)

// FuzzCompile feeds arbitrary wire bytes through Compile and Evaluate: any
// policy that compiles must evaluate without panicking.
func FuzzCompile(f *testing.F) {
	seed, _ := proto.Marshal(policy("p", pb.Action_DENY, &pb.Match{
		Principals: []*pb.StringMatch{prefix("cluster.local/")}, SourceIps: []*pb.Address{cidr("10.0.0.0/8")},
		DestinationPorts: []uint32{80}, NotServiceAccounts: []*pb.ServiceAccountMatch{{ServiceAccount: "x"}},
	}))
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var a pb.Authorization
		if proto.Unmarshal(b, &a) != nil {
			return
		}
		p, err := Compile(&a)
		if err != nil {
			return
		}
		e := NewEngine(p)
		_ = e.Evaluate(Target{Namespace: a.GetNamespace(), Policies: []string{p.Key}}, Conn{
			SrcIP: netip.MustParseAddr("10.0.0.1"), DstIP: netip.MustParseAddr("::1"), DstPort: 80, Identity: alice})
		_ = e.Evaluate(Target{Namespace: a.GetNamespace()}, Conn{})
	})
}
