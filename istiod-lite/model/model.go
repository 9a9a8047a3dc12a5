package model

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Changes names the resources whose content changed (added, updated or
// removed) in one model update.
type Changes struct {
	// Addresses and Authorizations are resource names.
	Addresses      []string
	Authorizations []string
	// Other names changed resources of further types, by type URL; it is
	// used by sources other than the model (the waypoint L7 resources).
	Other map[string][]string
	// At is when the Kubernetes change that caused them was observed.
	At time.Time
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool {
	if len(c.Addresses) > 0 || len(c.Authorizations) > 0 {
		return false
	}
	for _, names := range c.Other {
		if len(names) > 0 {
			return false
		}
	}
	return true
}

type set = map[string]struct{}

func addTo(m map[string]set, k, v string) {
	s, ok := m[k]
	if !ok {
		s = set{}
		m[k] = s
	}
	s[v] = struct{}{}
}

func removeFrom(m map[string]set, k, v string) {
	if s, ok := m[k]; ok {
		delete(s, v)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// Model is the ambient index. All methods are safe for concurrent use.
// Upsert/Delete methods take ownership of the objects passed in.
type Model struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex

	// Inputs, keyed "<ns>/<name>" (namespaces by name).
	namespaces   map[string]*corev1.Namespace
	pods         map[string]*Pod
	podsByNS     map[string]set
	services     map[string]*corev1.Service
	servicesByNS map[string]set
	slices       map[string]*discoveryv1.EndpointSlice
	slicesBySvc  map[string]set // service key -> slice keys
	gateways     map[string]*gatewayv1.Gateway
	authz        map[string]*securityv1.AuthorizationPolicy
	authzByNS    map[string]set
	peerAuthn    map[string]*securityv1.PeerAuthentication

	// Dependencies: gateway key -> keys of pods ("pod/ns/name") and
	// services ("svc/ns/name") whose waypoint label points at it.
	waypointUsers map[string]set
	usesWaypoint  map[string]string
	// quicNodes: node name -> keys of its ztunnel pods that serve QUIC.
	quicNodes map[string]set

	// Outputs.
	addresses      map[string]*Resource
	aliases        map[string]string // alias -> address name
	authorizations map[string]*Resource
	sliceWorkloads map[string][]string // slice key -> workload uids
	paConverted    set                 // names of PeerAuthentication-derived authorizations
	podRecomputes  int                 // workloads rebuilt, for tests of incrementality

	// Pending change names, flushed to listeners after each update.
	changedAddr  set
	changedAuthz set

	listenersMu sync.Mutex
	listeners   []func(Changes)
}

// New returns an empty model.
func New(cfg Config, log *slog.Logger) *Model {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Model{
		cfg:            cfg.withDefaults(),
		log:            log,
		namespaces:     map[string]*corev1.Namespace{},
		pods:           map[string]*Pod{},
		podsByNS:       map[string]set{},
		services:       map[string]*corev1.Service{},
		servicesByNS:   map[string]set{},
		slices:         map[string]*discoveryv1.EndpointSlice{},
		slicesBySvc:    map[string]set{},
		gateways:       map[string]*gatewayv1.Gateway{},
		authz:          map[string]*securityv1.AuthorizationPolicy{},
		authzByNS:      map[string]set{},
		peerAuthn:      map[string]*securityv1.PeerAuthentication{},
		waypointUsers:  map[string]set{},
		quicNodes:      map[string]set{},
		usesWaypoint:   map[string]string{},
		addresses:      map[string]*Resource{},
		aliases:        map[string]string{},
		authorizations: map[string]*Resource{},
		sliceWorkloads: map[string][]string{},
		paConverted:    set{},
		changedAddr:    set{},
		changedAuthz:   set{},
	}
}

// Config returns the model's effective configuration.
func (m *Model) Config() Config { return m.cfg }

// OnChange registers fn to be called after every update that changed
// resources. fn is called without model locks held, possibly from several
// goroutines; it must be quick and must not block.
func (m *Model) OnChange(fn func(Changes)) {
	m.listenersMu.Lock()
	m.listeners = append(m.listeners, fn)
	m.listenersMu.Unlock()
}

// update runs fn under the lock and then notifies listeners of the changes.
func (m *Model) update(fn func()) {
	at := time.Now()
	m.mu.Lock()
	fn()
	ch := Changes{At: at}
	if len(m.changedAddr) > 0 {
		ch.Addresses = slices.Collect(maps.Keys(m.changedAddr))
		clear(m.changedAddr)
	}
	if len(m.changedAuthz) > 0 {
		ch.Authorizations = slices.Collect(maps.Keys(m.changedAuthz))
		clear(m.changedAuthz)
	}
	m.mu.Unlock()
	if ch.Empty() {
		return
	}
	m.listenersMu.Lock()
	ls := slices.Clone(m.listeners)
	m.listenersMu.Unlock()
	for _, l := range ls {
		l(ch)
	}
}

// setAddress publishes (or, with r nil, removes) the address name.
func (m *Model) setAddress(name string, r *Resource) {
	old := m.addresses[name]
	if sameResource(old, r) {
		return
	}
	if old != nil {
		for _, a := range old.Aliases {
			if m.aliases[a] == name {
				delete(m.aliases, a)
			}
		}
	}
	if r == nil {
		delete(m.addresses, name)
	} else {
		m.addresses[name] = r
		for _, a := range r.Aliases {
			m.aliases[a] = name
		}
	}
	m.changedAddr[name] = struct{}{}
}

func (m *Model) setAuthorization(name string, r *Resource) {
	old := m.authorizations[name]
	if sameResource(old, r) {
		return
	}
	if r == nil {
		delete(m.authorizations, name)
	} else {
		m.authorizations[name] = r
	}
	m.changedAuthz[name] = struct{}{}
}

// Get returns the resource of typeURL named name, or for addresses, with
// the alias name. It returns nil when there is none.
func (m *Model) Get(typeURL, name string) *Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch typeURL {
	case AddressType:
		if r, ok := m.addresses[name]; ok {
			return r
		}
		if n, ok := m.aliases[name]; ok {
			return m.addresses[n]
		}
	case AuthorizationType:
		return m.authorizations[name]
	}
	return nil
}

// All returns every resource of typeURL, in no particular order.
func (m *Model) All(typeURL string) []*Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch typeURL {
	case AddressType:
		return slices.Collect(maps.Values(m.addresses))
	case AuthorizationType:
		return slices.Collect(maps.Values(m.authorizations))
	}
	return nil
}

// Sizes reports the number of inputs and outputs, for metrics.
func (m *Model) Sizes() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return map[string]int{
		"namespaces":            len(m.namespaces),
		"pods":                  len(m.pods),
		"services":              len(m.services),
		"endpointslices":        len(m.slices),
		"gateways":              len(m.gateways),
		"authorizationpolicies": len(m.authz),
		"peerauthentications":   len(m.peerAuthn),
		"addresses":             len(m.addresses),
		"authorizations":        len(m.authorizations),
	}
}

func key(ns, name string) string { return ns + "/" + name }
