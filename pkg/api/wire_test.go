package api

import (
	"bytes"
	"encoding/hex"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/api/zdsapi"
)

// TestWireBytes encodes messages whose bytes are worked out by hand from the
// field numbers Istio uses, so a renumbered field fails here, and decodes
// them back.
func TestWireBytes(t *testing.T) {
	tests := []struct {
		name string
		msg  proto.Message
		hex  string
	}{
		{
			name: "workload uid=20 name=1 addresses=3 tunnel_protocol=5 status=17",
			msg: &workloadapi.Workload{
				Uid:            "u",
				Name:           "p",
				Addresses:      [][]byte{{10, 0, 0, 1}},
				TunnelProtocol: workloadapi.TunnelProtocol_HBONE,
				Status:         workloadapi.WorkloadStatus_UNHEALTHY,
			},
			// 0a 01 'p' | 1a 04 0a000001 | 28 01 | 88 01 01 (17<<3|0) | a2 01 01 'u' (20<<3|2)
			hex: "0a0170" + "1a040a000001" + "2801" + "880101" + "a2010175",
		},
		{
			name: "workload services=22 map entry with PortList",
			msg: &workloadapi.Workload{Services: map[string]*workloadapi.PortList{
				"n/h": {Ports: []*workloadapi.Port{{ServicePort: 80, TargetPort: 8080, AppProtocol: workloadapi.AppProtocol_HTTP11}}},
			}},
			// b2 01 (22<<3|2) len 10 | key 0a 03 "n/h" | value 12 09 | PortList 0a 07 | 08 50 10 90 3f (8080) 18 01
			hex: "b20110" + "0a036e2f68" + "1209" + "0a07" + "0850" + "10903f" + "1801",
		},
		{
			name: "address oneof service=2 with hostname=3 and waypoint=7",
			msg: &workloadapi.Address{Type: &workloadapi.Address_Service{Service: &workloadapi.Service{
				Hostname: "s",
				Waypoint: &workloadapi.GatewayAddress{HboneMtlsPort: 15008},
			}}},
			// 12 08 | 1a 01 's' | 3a 03 18 a0 75 (15008 as a varint)
			hex: "1208" + "1a0173" + "3a0318a075",
		},
		{
			name: "authorization action=4 scope=3 rules=5 clause matches=2 match ports=9",
			msg: &securityapi.Authorization{
				Name:   "a",
				Scope:  securityapi.Scope_WORKLOAD_SELECTOR,
				Action: securityapi.Action_DENY,
				Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{{
					DestinationPorts: []uint32{80},
					Principals:       []*securityapi.StringMatch{{MatchType: &securityapi.StringMatch_Presence{Presence: &emptypb.Empty{}}}},
				}}}}}},
			},
			// 0a 01 'a' | 18 02 | 20 01 | 2a 0b | 0a 09 | 12 07 | 1a 02 22 00 (principals presence=4) | 4a 01 50 (packed ports)
			hex: "0a0161" + "1802" + "2001" + "2a0b" + "0a09" + "1207" + "1a022200" + "4a0150",
		},
		{
			name: "zds add=1 with uid=1 and workload_info=2",
			msg: &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{
				Uid:          "u",
				WorkloadInfo: &zdsapi.WorkloadInfo{Name: "p", ServiceAccount: "s"},
			}}},
			// 0a 0b | 0a 01 'u' | 12 06 0a 01 'p' 1a 01 's'
			hex: "0a0b" + "0a0175" + "12060a01701a0173",
		},
		{
			name: "zds del=2 with uid=2",
			msg:  &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: "u"}}},
			hex:  "1203" + "120175",
		},
		{
			name: "zds keep=5",
			msg:  &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Keep{Keep: &zdsapi.KeepWorkload{Uid: "u"}}},
			hex:  "2a03" + "0a0175",
		},
		{
			name: "zds ack with error",
			msg:  &zdsapi.WorkloadResponse{Payload: &zdsapi.WorkloadResponse_Ack{Ack: &zdsapi.Ack{Error: "x"}}},
			hex:  "0a03" + "0a0178",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proto.MarshalOptions{Deterministic: true}.Marshal(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			want, err := hex.DecodeString(tt.hex)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("bytes\n got %x\nwant %x", got, want)
			}
			back := tt.msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(want, back); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(back, tt.msg) {
				t.Fatalf("round trip changed the message: %v", back)
			}
		})
	}
}

// TestPackageNames pins the proto package and type names that appear on the
// wire (xDS type URLs) or in configuration.
func TestPackageNames(t *testing.T) {
	for _, tt := range []struct {
		msg  proto.Message
		want protoreflect.FullName
	}{
		{&workloadapi.Address{}, "istio.workload.Address"},
		{&securityapi.Authorization{}, "istio.security.Authorization"},
		{&zdsapi.ZdsHello{}, "istio.workload.zds.ZdsHello"},
	} {
		if got := tt.msg.ProtoReflect().Descriptor().FullName(); got != tt.want {
			t.Errorf("full name %s, want %s", got, tt.want)
		}
	}
}
