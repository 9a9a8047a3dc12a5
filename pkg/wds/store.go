package wds

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/l4authz"
)

// Type URLs this store consumes (equal to the pkg/xds constants).
const (
	AddressType       = "type.googleapis.com/istio.workload.Address"
	AuthorizationType = "type.googleapis.com/istio.security.Authorization"
)

// Subscriber asks the control plane for individual resources; the xDS
// client implements it.
type Subscriber interface {
	Subscribe(typeURL string, names ...string)
}

// Config configures a Store.
type Config struct {
	// TrustDomain is the mesh trust domain used for workloads that do not
	// name one; empty means cluster.local.
	TrustDomain string
	// Network is this node's network, used for local address lookups.
	Network string
	// Log receives applied and rejected updates; nil discards.
	Log *slog.Logger
}

// Store is ztunnel's mesh state. It is safe for concurrent use: Apply is
// called by the xDS client, every other method by the proxy and the admin
// server.
type Store struct {
	cfg Config
	log *slog.Logger

	subscriber atomic.Pointer[subscriberBox]

	mu        sync.RWMutex
	names     map[string]entry // xDS Address name -> what it added
	workloads map[string]*Workload
	byIP      map[NetAddr]*Workload
	services  map[string]*Service
	byVIP     map[NetAddr]*Service
	byHost    map[string][]*Service
	endpoints map[string]map[string]*Workload // service key -> uid -> workload
	sortedEPs map[string][]*Workload
	rr        map[string]*atomic.Uint64
	policies  map[string]*l4authz.Policy
	rawPolicy map[string]*securityapi.Authorization
	engine    *l4authz.Engine
	changed   chan struct{}
	synced    map[string]bool
	syncedCh  chan struct{}
	requested map[NetAddr]bool
	missing   map[NetAddr]bool
}

type subscriberBox struct{ s Subscriber }

type entry struct {
	workload *Workload
	service  *Service
}

// New returns an empty store.
func New(cfg Config) *Store {
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = identity.DefaultTrustDomain
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		cfg: cfg, log: log,
		names: map[string]entry{}, workloads: map[string]*Workload{}, byIP: map[NetAddr]*Workload{},
		services: map[string]*Service{}, byVIP: map[NetAddr]*Service{}, byHost: map[string][]*Service{},
		endpoints: map[string]map[string]*Workload{}, sortedEPs: map[string][]*Workload{}, rr: map[string]*atomic.Uint64{},
		policies: map[string]*l4authz.Policy{}, rawPolicy: map[string]*securityapi.Authorization{},
		engine: l4authz.NewEngine(), changed: make(chan struct{}), synced: map[string]bool{}, syncedCh: make(chan struct{}),
		requested: map[NetAddr]bool{}, missing: map[NetAddr]bool{},
	}
}

// SetSubscriber sets the client used for on-demand lookups. It may be
// called once the xDS client exists (the client needs the store first).
func (s *Store) SetSubscriber(sub Subscriber) { s.subscriber.Store(&subscriberBox{sub}) }

// Changed returns a channel closed at the next applied change.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Synced is closed once a response of both Address and Authorization types
// has been applied.
func (s *Store) Synced() <-chan struct{} { return s.syncedCh }

// ErrUnknownType is returned by Apply for a type URL the store does not
// consume.
var ErrUnknownType = errors.New("unknown type URL")

// Apply implements the xDS client's Handler. It validates every resource
// first; on any error nothing is applied and the error, naming the resource
// and the field, NACKs the response.
func (s *Store) Apply(typeURL string, resources []*discoveryv3.Resource, removed []string) error {
	var err error
	switch typeURL {
	case AddressType:
		err = s.applyAddresses(resources, removed)
	case AuthorizationType:
		err = s.applyPolicies(resources, removed)
	default:
		return fmt.Errorf("%w %q", ErrUnknownType, typeURL)
	}
	if err != nil {
		s.log.Warn("rejected xds update", "type", typeURL, "error", err)
		return err
	}
	s.log.Debug("applied xds update", "type", typeURL, "updated", len(resources), "removed", len(removed))
	return nil
}

func unpack(r *discoveryv3.Resource, typeURL string, m proto.Message) error {
	if r.GetResource() == nil {
		return fmt.Errorf("resource %q: no body", r.GetName())
	}
	if got := r.GetResource().GetTypeUrl(); got != typeURL {
		return fmt.Errorf("resource %q: type %q, want %q", r.GetName(), got, typeURL)
	}
	if err := proto.Unmarshal(r.GetResource().GetValue(), m); err != nil {
		return fmt.Errorf("resource %q: decode: %w", r.GetName(), err)
	}
	return nil
}

func (s *Store) applyAddresses(resources []*discoveryv3.Resource, removed []string) error {
	type parsed struct {
		name string
		e    entry
	}
	in := make([]parsed, 0, len(resources))
	for _, r := range resources {
		var a workloadapi.Address
		if err := unpack(r, AddressType, &a); err != nil {
			return err
		}
		var e entry
		switch t := a.GetType().(type) {
		case *workloadapi.Address_Workload:
			w, err := newWorkload(t.Workload, s.cfg.TrustDomain)
			if err != nil {
				return fmt.Errorf("address %q: workload.%w", r.GetName(), err)
			}
			e.workload = w
		case *workloadapi.Address_Service:
			svc, err := newService(t.Service)
			if err != nil {
				return fmt.Errorf("address %q: service.%w", r.GetName(), err)
			}
			e.service = svc
		default:
			return fmt.Errorf("address %q: neither workload nor service set", r.GetName())
		}
		name := r.GetName()
		if name == "" {
			return fmt.Errorf("address with empty resource name")
		}
		in = append(in, parsed{name, e})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	dirty := map[string]bool{}
	for _, name := range removed {
		s.removeNameLocked(name, dirty)
		if a, ok := parseAlias(name); ok && s.requested[a] {
			s.missing[a] = true
		}
	}
	for _, p := range in {
		s.removeNameLocked(p.name, dirty)
		s.names[p.name] = p.e
		if w := p.e.workload; w != nil {
			s.addWorkloadLocked(w, dirty)
		} else {
			s.addServiceLocked(p.e.service, dirty)
		}
	}
	for key := range dirty {
		s.rebuildEndpointsLocked(key)
	}
	s.notifyLocked(AddressType)
	return nil
}

func (s *Store) removeNameLocked(name string, dirty map[string]bool) {
	e, ok := s.names[name]
	if !ok {
		return
	}
	delete(s.names, name)
	if w := e.workload; w != nil && s.workloads[w.UID] == w {
		delete(s.workloads, w.UID)
		for _, ip := range w.Addrs {
			k := NetAddr{w.Proto.GetNetwork(), ip}
			if s.byIP[k] == w {
				delete(s.byIP, k)
			}
		}
		for key := range w.Proto.GetServices() {
			if eps := s.endpoints[key]; eps != nil && eps[w.UID] == w {
				delete(eps, w.UID)
				dirty[key] = true
			}
		}
	}
	if svc := e.service; svc != nil && s.services[svc.Key] == svc {
		delete(s.services, svc.Key)
		for _, v := range svc.VIPs {
			if s.byVIP[v] == svc {
				delete(s.byVIP, v)
			}
		}
		hs := slices.DeleteFunc(slices.Clone(s.byHost[svc.Hostname()]), func(x *Service) bool { return x == svc })
		if len(hs) == 0 {
			delete(s.byHost, svc.Hostname())
		} else {
			s.byHost[svc.Hostname()] = hs
		}
	}
}

func (s *Store) addWorkloadLocked(w *Workload, dirty map[string]bool) {
	if old := s.workloads[w.UID]; old != nil {
		// The same uid under another name: replace it everywhere.
		for name, e := range s.names {
			if e.workload == old {
				s.removeNameLocked(name, dirty)
			}
		}
	}
	s.workloads[w.UID] = w
	if w.Proto.GetNetworkMode() != workloadapi.NetworkMode_HOST_NETWORK {
		for _, ip := range w.Addrs {
			a := NetAddr{w.Proto.GetNetwork(), ip}
			s.byIP[a] = w
			delete(s.missing, a)
		}
	}
	for key := range w.Proto.GetServices() {
		eps := s.endpoints[key]
		if eps == nil {
			eps = map[string]*Workload{}
			s.endpoints[key] = eps
		}
		eps[w.UID] = w
		dirty[key] = true
	}
}

func (s *Store) addServiceLocked(svc *Service, _ map[string]bool) {
	s.services[svc.Key] = svc
	for _, v := range svc.VIPs {
		s.byVIP[v] = svc
		delete(s.missing, v)
	}
	s.byHost[svc.Hostname()] = append(slices.Clone(s.byHost[svc.Hostname()]), svc)
	if s.rr[svc.Key] == nil {
		s.rr[svc.Key] = new(atomic.Uint64)
	}
}

func (s *Store) rebuildEndpointsLocked(key string) {
	eps := s.endpoints[key]
	if len(eps) == 0 {
		delete(s.endpoints, key)
		delete(s.sortedEPs, key)
		return
	}
	out := make([]*Workload, 0, len(eps))
	for _, w := range eps {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	s.sortedEPs[key] = out
}

func (s *Store) applyPolicies(resources []*discoveryv3.Resource, removed []string) error {
	type parsed struct {
		name string
		raw  *securityapi.Authorization
		p    *l4authz.Policy
	}
	in := make([]parsed, 0, len(resources))
	for _, r := range resources {
		var a securityapi.Authorization
		if err := unpack(r, AuthorizationType, &a); err != nil {
			return err
		}
		p, err := l4authz.Compile(&a)
		if err != nil {
			return fmt.Errorf("authorization %q: %w", r.GetName(), err)
		}
		in = append(in, parsed{r.GetName(), &a, p})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range removed {
		delete(s.policies, name)
		delete(s.rawPolicy, name)
	}
	for _, p := range in {
		s.policies[p.name] = p.p
		s.rawPolicy[p.name] = p.raw
	}
	all := make([]*l4authz.Policy, 0, len(s.policies))
	for _, p := range s.policies {
		all = append(all, p)
	}
	s.engine = l4authz.NewEngine(all...)
	s.notifyLocked(AuthorizationType)
	return nil
}

func (s *Store) notifyLocked(typeURL string) {
	close(s.changed)
	s.changed = make(chan struct{})
	if !s.synced[typeURL] {
		s.synced[typeURL] = true
		if s.synced[AddressType] && s.synced[AuthorizationType] {
			close(s.syncedCh)
		}
	}
}
