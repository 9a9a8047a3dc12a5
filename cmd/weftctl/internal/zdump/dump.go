package zdump

import (
	"encoding/json"
	"fmt"
	"net/netip"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
	"github.com/weftmesh/weft/pkg/xds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/telemetry"
	"github.com/weftmesh/weft/ztunnel/udp"
)

// Dump is one ztunnel's /config_dump, decoded. The proto sections keep
// their raw JSON too, so -o json prints exactly what ztunnel served.
type Dump struct {
	Workloads     []Item[*workloadapi.Workload]
	Services      []Item[*workloadapi.Service]
	Policies      []Item[*securityapi.Authorization]
	Certificates  []certmgr.Status
	WorkloadState []inpod.State
	Connections   []telemetry.ConnState
	UDPFlows      []udp.FlowInfo
	XDS           *xds.Status
	Config        map[string]any
}

// Item is one protobuf resource of the dump with its JSON as served.
type Item[T any] struct {
	Msg T
	Raw json.RawMessage
}

// MarshalJSON writes the resource as ztunnel served it.
func (i Item[T]) MarshalJSON() ([]byte, error) { return i.Raw, nil }

type rawDump struct {
	Workloads     []json.RawMessage     `json:"workloads"`
	Services      []json.RawMessage     `json:"services"`
	Policies      []json.RawMessage     `json:"policies"`
	Certificates  []certmgr.Status      `json:"certificates"`
	WorkloadState []inpod.State         `json:"workloadState"`
	Connections   []telemetry.ConnState `json:"connections"`
	UDPFlows      []udp.FlowInfo        `json:"udpFlows"`
	XDS           *xds.Status           `json:"xds"`
	Config        map[string]any        `json:"config"`
}

// Parse decodes a /config_dump body. Unknown keys are ignored, so a newer
// ztunnel still works; a malformed resource is an error naming it.
func Parse(body []byte) (*Dump, error) {
	var r rawDump
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("decode config_dump: %w", err)
	}
	d := &Dump{Certificates: r.Certificates, WorkloadState: r.WorkloadState, Connections: r.Connections, UDPFlows: r.UDPFlows, XDS: r.XDS, Config: r.Config}
	var err error
	if d.Workloads, err = decodeAll("workloads", r.Workloads, func() *workloadapi.Workload { return &workloadapi.Workload{} }); err != nil {
		return nil, err
	}
	if d.Services, err = decodeAll("services", r.Services, func() *workloadapi.Service { return &workloadapi.Service{} }); err != nil {
		return nil, err
	}
	if d.Policies, err = decodeAll("policies", r.Policies, func() *securityapi.Authorization { return &securityapi.Authorization{} }); err != nil {
		return nil, err
	}
	return d, nil
}

func decodeAll[T proto.Message](section string, raws []json.RawMessage, mk func() T) ([]Item[T], error) {
	out := make([]Item[T], 0, len(raws))
	opts := protojson.UnmarshalOptions{DiscardUnknown: true}
	for i, raw := range raws {
		m := mk()
		if err := opts.Unmarshal(raw, m); err != nil {
			return nil, fmt.Errorf("decode config_dump %s[%d]: %w", section, i, err)
		}
		out = append(out, Item[T]{Msg: m, Raw: raw})
	}
	return out, nil
}

// ips converts the proto's byte addresses, skipping malformed ones.
func ips(raw [][]byte) []netip.Addr {
	out := make([]netip.Addr, 0, len(raw))
	for _, b := range raw {
		if a, ok := netip.AddrFromSlice(b); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// WorkloadByUID returns the workload with uid, or nil.
func (d *Dump) WorkloadByUID(uid string) *workloadapi.Workload {
	for _, w := range d.Workloads {
		if w.Msg.GetUid() == uid {
			return w.Msg
		}
	}
	return nil
}

// WorkloadByAddr returns the first workload with address a, or nil.
func (d *Dump) WorkloadByAddr(a netip.Addr) *workloadapi.Workload {
	for _, w := range d.Workloads {
		for _, ip := range ips(w.Msg.GetAddresses()) {
			if ip == a {
				return w.Msg
			}
		}
	}
	return nil
}
