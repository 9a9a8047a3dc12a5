package l7config

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/pkg/xds"
	"github.com/weftmesh/weft/waypoint/route"
)

// Types are the type URLs Store consumes, in subscription order.
var Types = []string{l7api.RouteConfigType, l7api.L7PolicyType, l7api.TrafficPolicyType}

// ErrUnknownType is returned by Apply for a type URL Store does not consume.
var ErrUnknownType = errors.New("unknown type URL")

// Store holds the last good L7 configuration. It implements xds.Handler for
// Types; Current is safe to call from any goroutine.
type Store struct {
	log  *slog.Logger
	opts []route.Option

	mu        sync.Mutex // serialises Apply
	routes    map[string]*l7api.RouteConfig
	policies  map[string]*l7api.L7Policy
	traffic   map[string]*l7api.TrafficPolicy
	synced    map[string]bool
	syncedCh  chan struct{}
	lastError string

	current atomic.Pointer[Snapshot]
}

var _ xds.Handler = (*Store)(nil)

// New returns a Store holding the empty configuration. opts are passed to
// route.Compile (tests fix the random source).
func New(log *slog.Logger, opts ...route.Option) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		log: log, opts: opts,
		routes: map[string]*l7api.RouteConfig{}, policies: map[string]*l7api.L7Policy{},
		traffic: map[string]*l7api.TrafficPolicy{}, synced: map[string]bool{}, syncedCh: make(chan struct{}),
	}
	s.current.Store(empty())
	return s
}

// Current returns the configuration in force; it is never nil.
func (s *Store) Current() *Snapshot { return s.current.Load() }

// Synced is closed once a response of each of Types has been applied.
func (s *Store) Synced() <-chan struct{} { return s.syncedCh }

// Apply implements xds.Handler: it decodes and checks every resource,
// compiles the configuration that would result, and applies it only if all
// of that succeeds. Removing an unknown name is not an error.
func (s *Store) Apply(typeURL string, resources []*discoveryv3.Resource, removed []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	routes, policies, traffic := clone(s.routes), clone(s.policies), clone(s.traffic)
	var err error
	switch typeURL {
	case l7api.RouteConfigType:
		err = update(routes, resources, removed, "RouteConfig", checkRouteConfig)
	case l7api.L7PolicyType:
		err = update(policies, resources, removed, "L7Policy", checkL7Policy)
	case l7api.TrafficPolicyType:
		err = update(traffic, resources, removed, "TrafficPolicy", checkTrafficPolicy)
	default:
		return fmt.Errorf("%w %s", ErrUnknownType, typeURL)
	}
	if err == nil {
		var snap *Snapshot
		snap, err = compile(values(routes), values(policies), values(traffic), s.opts)
		if err == nil {
			snap.Version = s.current.Load().Version + 1
			s.routes, s.policies, s.traffic = routes, policies, traffic
			s.current.Store(snap)
		}
	}
	if err != nil {
		s.lastError = err.Error()
		s.log.Warn("rejected l7 configuration; keeping the last good one", "type", typeURL, "error", err)
		return err
	}
	s.log.Info("applied l7 configuration", "type", typeURL, "updated", len(resources), "removed", len(removed),
		"version", s.current.Load().Version)
	if !s.synced[typeURL] {
		s.synced[typeURL] = true
		if len(s.synced) == len(Types) {
			close(s.syncedCh)
		}
	}
	return nil
}

// update applies one response to m: decode each resource, check it, then
// remove the removed names.
func update[T proto.Message](m map[string]T, resources []*discoveryv3.Resource, removed []string, kind string, check func(string, T) error) error {
	for _, r := range resources {
		name := r.GetName()
		if name == "" {
			return resourceErr(kind, name, "name", errors.New("empty resource name"))
		}
		var zero T
		msg := zero.ProtoReflect().New().Interface().(T)
		if err := unmarshal(r.GetResource(), msg); err != nil {
			return resourceErr(kind, name, "resource", err)
		}
		if err := check(name, msg); err != nil {
			return err
		}
		m[name] = msg
	}
	for _, name := range removed {
		delete(m, name)
	}
	return nil
}

func unmarshal(a *anypb.Any, m proto.Message) error {
	if a == nil {
		return errors.New("missing")
	}
	want := "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
	if a.GetTypeUrl() != want {
		return fmt.Errorf("type %q, want %q", a.GetTypeUrl(), want)
	}
	return proto.Unmarshal(a.GetValue(), m)
}

func clone[T any](m map[string]T) map[string]T {
	out := make(map[string]T, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// values returns m's values sorted by name, so compilation is deterministic.
func values[T any](m map[string]T) []T {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// Dump is the admin /config_dump section: every resource held as protobuf
// JSON by name, the version and the last rejection.
func (s *Store) Dump() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	js := func(m proto.Message) any {
		b, err := protojson.Marshal(m)
		if err != nil {
			return err.Error()
		}
		return jsonRaw(b)
	}
	out := map[string]any{"version": s.current.Load().Version, "lastRejection": s.lastError}
	for kind, m := range map[string]map[string]proto.Message{
		"routes": asMessages(s.routes), "l7Policies": asMessages(s.policies), "trafficPolicies": asMessages(s.traffic),
	} {
		section := map[string]any{}
		for k, v := range m {
			section[k] = js(v)
		}
		out[kind] = section
	}
	return out
}

func asMessages[T proto.Message](m map[string]T) map[string]proto.Message {
	out := make(map[string]proto.Message, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
