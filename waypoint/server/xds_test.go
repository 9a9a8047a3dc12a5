package server

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/weftmesh/weft/pkg/xds"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/telemetry"
)

type nopHandler struct{}

func (nopHandler) Apply(string, []*discoveryv3.Resource, []string) error { return nil }

// TestDispatchTellsOfL7Changes: the page releaser hears of L7
// configuration changes, not of workload discovery.
func TestDispatchTellsOfL7Changes(t *testing.T) {
	metrics := telemetry.NewMetrics()
	changes := 0
	byType := map[string]xds.Handler{xds.AddressType: nopHandler{}}
	for _, ty := range l7config.Types {
		byType[ty] = nopHandler{}
	}
	d := dispatch{byType: byType, metrics: metrics, l7Changed: func() { changes++ }}
	if err := d.Apply(xds.AddressType, nil, nil); err != nil || changes != 0 {
		t.Fatalf("address update: err %v, %d L7 changes heard, want none", err, changes)
	}
	for _, ty := range l7config.Types {
		if err := d.Apply(ty, nil, []string{"gone"}); err != nil {
			t.Fatal(err)
		}
	}
	if changes != len(l7config.Types) {
		t.Errorf("%d L7 changes heard, want %d (one per type)", changes, len(l7config.Types))
	}
	if err := d.Apply("type.googleapis.com/unknown", nil, nil); err == nil || changes != len(l7config.Types) {
		t.Errorf("unknown type: err %v, %d changes heard; want an error and no change", err, changes)
	}
}
