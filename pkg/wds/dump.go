package wds

import (
	"encoding/json"
	"sort"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Dump is the store's part of the admin /config_dump: every workload,
// service and policy as its protobuf JSON, sorted by key.
type Dump struct {
	Workloads []json.RawMessage `json:"workloads"`
	Services  []json.RawMessage `json:"services"`
	Policies  []json.RawMessage `json:"policies"`
}

// Dump returns a consistent snapshot of the store.
func (s *Store) Dump() Dump {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := Dump{Workloads: []json.RawMessage{}, Services: []json.RawMessage{}, Policies: []json.RawMessage{}}
	for _, k := range sortedKeys(s.workloads) {
		d.Workloads = append(d.Workloads, marshal(s.workloads[k].Proto))
	}
	for _, k := range sortedKeys(s.services) {
		d.Services = append(d.Services, marshal(s.services[k].Proto))
	}
	for _, k := range sortedKeys(s.rawPolicy) {
		d.Policies = append(d.Policies, marshal(s.rawPolicy[k]))
	}
	return d
}

func marshal(m proto.Message) json.RawMessage {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
