package xds

import (
	"slices"

	"github.com/weftmesh/weft/istiod-lite/model"
)

// Mux is a Source that serves each type URL from the source that owns it,
// so the server can serve the model's types and the waypoint L7 types
// from separate producers. Build it with Handle before passing it to New;
// it is then safe for concurrent use.
type Mux struct {
	byType  map[string]Source
	types   []string
	sources []Source
}

var _ Source = (*Mux)(nil)

// NewMux returns an empty Mux.
func NewMux() *Mux { return &Mux{byType: map[string]Source{}} }

// Handle routes types to src; types are pushed in the order handled. A
// type handled twice keeps its first source.
func (m *Mux) Handle(src Source, types ...string) *Mux {
	for _, t := range types {
		if _, dup := m.byType[t]; dup {
			continue
		}
		m.byType[t] = src
		m.types = append(m.types, t)
	}
	if !slices.Contains(m.sources, src) {
		m.sources = append(m.sources, src)
	}
	return m
}

// Types returns the handled type URLs in push order, for Config.Types.
func (m *Mux) Types() []string { return slices.Clone(m.types) }

// Get returns the resource from the type's source, nil for unknown types.
func (m *Mux) Get(typeURL, name string) *model.Resource {
	if s, ok := m.byType[typeURL]; ok {
		return s.Get(typeURL, name)
	}
	return nil
}

// All returns every resource of the type from its source.
func (m *Mux) All(typeURL string) []*model.Resource {
	if s, ok := m.byType[typeURL]; ok {
		return s.All(typeURL)
	}
	return nil
}

// OnChange registers fn with every source.
func (m *Mux) OnChange(fn func(model.Changes)) {
	for _, s := range m.sources {
		s.OnChange(fn)
	}
}
