package balance

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// table maps endpoints to per-endpoint state. Reads are one atomic load
// and a map lookup; when Pick meets an endpoint without state the map is
// rebuilt, copy-on-write, for the endpoints of that Pick, which also drops
// the state of endpoints that are gone. It is safe for concurrent use.
type table[S any] struct {
	mu   sync.Mutex // serialises rebuilds
	m    atomic.Pointer[map[netip.AddrPort]*S]
	make func(netip.AddrPort) *S
}

func newTable[S any](mk func(netip.AddrPort) *S) *table[S] {
	t := &table[S]{make: mk}
	m := map[netip.AddrPort]*S{}
	t.m.Store(&m)
	return t
}

// get returns ep's state; endpoints is the set ep was picked from.
func (t *table[S]) get(ep netip.AddrPort, endpoints []netip.AddrPort) *S {
	if s := (*t.m.Load())[ep]; s != nil {
		return s
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.m.Load()
	if s := old[ep]; s != nil {
		return s
	}
	m := make(map[netip.AddrPort]*S, len(endpoints)+1)
	for _, e := range endpoints {
		if s := old[e]; s != nil {
			m[e] = s
		} else if m[e] == nil {
			m[e] = t.make(e)
		}
	}
	if m[ep] == nil {
		m[ep] = t.make(ep)
	}
	t.m.Store(&m)
	return m[ep]
}

// len returns the number of endpoints with state.
func (t *table[S]) len() int { return len(*t.m.Load()) }
