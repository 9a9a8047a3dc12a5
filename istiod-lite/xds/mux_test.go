package xds

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/weftmesh/weft/istiod-lite/model"
)

// fakeSource serves fixed resources of its types.
type fakeSource struct {
	res       map[string]*model.Resource // "<type> <name>"
	listeners []func(model.Changes)
}

func (f *fakeSource) Get(t, n string) *model.Resource { return f.res[t+" "+n] }
func (f *fakeSource) All(t string) []*model.Resource {
	var out []*model.Resource
	for k, r := range f.res {
		if len(k) > len(t) && k[:len(t)] == t {
			out = append(out, r)
		}
	}
	return out
}
func (f *fakeSource) OnChange(fn func(model.Changes)) { f.listeners = append(f.listeners, fn) }

func TestMuxRoutesByType(t *testing.T) {
	a := &fakeSource{res: map[string]*model.Resource{"A x": {Name: "x"}}}
	b := &fakeSource{res: map[string]*model.Resource{"B y": {Name: "y"}, "A z": {Name: "shadowed"}}}
	m := NewMux().Handle(a, "A").Handle(b, "B", "A")
	if d := cmp.Diff([]string{"A", "B"}, m.Types()); d != "" {
		t.Errorf("types (-want +got):\n%s", d)
	}
	if m.Get("A", "x") == nil || m.Get("B", "y") == nil || m.Get("A", "z") != nil || m.Get("C", "x") != nil {
		t.Error("Get did not route by type to the first source handling it")
	}
	if len(m.All("B")) != 1 || len(m.All("C")) != 0 {
		t.Error("All did not route by type")
	}
	var got int
	m.OnChange(func(model.Changes) { got++ })
	if len(a.listeners) != 1 || len(b.listeners) != 1 {
		t.Fatalf("listeners registered %d, %d times", len(a.listeners), len(b.listeners))
	}
	b.listeners[0](model.Changes{Other: map[string][]string{"B": {"y"}}})
	if got != 1 {
		t.Errorf("listener called %d times", got)
	}
}

func TestServerServesConfiguredTypes(t *testing.T) {
	s := New(NewMux(), Config{Types: []string{"B"}})
	if !s.served("B") || s.served(model.AddressType) {
		t.Error("served types do not follow Config.Types")
	}
	if d := New(NewMux(), Config{}); !d.served(model.AddressType) || !d.served(model.AuthorizationType) {
		t.Error("default types are the model's")
	}
}

func TestChangesEmpty(t *testing.T) {
	if !(model.Changes{Other: map[string][]string{"B": nil}}).Empty() {
		t.Error("no names is empty")
	}
	if (model.Changes{Other: map[string][]string{"B": {"y"}}}).Empty() {
		t.Error("a named change is not empty")
	}
}
