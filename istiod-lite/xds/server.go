package xds

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/weftmesh/weft/istiod-lite/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Source is the model the server serves.
type Source interface {
	// Get returns a resource by name or alias, nil if none.
	Get(typeURL, name string) *model.Resource
	// All returns every resource of a type.
	All(typeURL string) []*model.Resource
	// OnChange registers a non-blocking change listener.
	OnChange(func(model.Changes))
}

var _ Source = (*model.Model)(nil)

// Authenticator decides whether a stream may subscribe; it returns a
// caller description for logs. Nil allows every stream (tests, plaintext).
type Authenticator interface {
	Authenticate(ctx context.Context) (string, error)
}

// Config tunes the server.
type Config struct {
	// Debounce is the quiet period after a change before pushing (default
	// 10 ms); MaxDebounce caps the delay under a stream of changes (default
	// 100 ms).
	Debounce    time.Duration
	MaxDebounce time.Duration
	// Log receives connection events and NACKs; nil discards.
	Log *slog.Logger
	// Metrics, when set, is updated.
	Metrics *Metrics
	// Auth, when set, authenticates every stream.
	Auth Authenticator
	// Types are the type URLs served, in push order; empty means Types.
	// A source serving more types (a Mux) lists them here.
	Types []string
}

// Types are the type URLs the model serves, in push order: the default
// of Config.Types.
var Types = []string{model.AddressType, model.AuthorizationType}

// Server is the delta ADS server. Create with New, register with
// Register, and run its debouncer with Run.
type Server struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer

	src Source
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	conns   map[*conn]struct{}
	pending map[string]map[string]struct{} // type -> changed names
	pendAt  time.Time                      // earliest change in pending
	kick    chan struct{}
	track   chan struct{} // convergence needs re-evaluating
	closing chan struct{} // closed when Run ends: streams end so clients move on
	closeMu sync.Once

	fullPushes *fullPushes // bounds and follows full-state pushes

	seq     atomic.Uint64 // batches distributed
	nextID  atomic.Uint64
	tracker convergence
}

// New returns a server for src.
func New(src Source, cfg Config) *Server {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 10 * time.Millisecond
	}
	if cfg.MaxDebounce < cfg.Debounce {
		cfg.MaxDebounce = max(100*time.Millisecond, cfg.Debounce)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Types) == 0 {
		cfg.Types = Types
	}
	s := &Server{
		src:     src,
		cfg:     cfg,
		log:     cfg.Log,
		conns:   map[*conn]struct{}{},
		pending: map[string]map[string]struct{}{},
		kick:    make(chan struct{}, 1),
		track:   make(chan struct{}, 1),
		closing: make(chan struct{}),

		fullPushes: newFullPushes(),
	}
	s.tracker.metrics = cfg.Metrics
	src.OnChange(s.onChange)
	return s
}

// ServerOptions are the gRPC server options the xDS server expects:
// keepalives that detect dead clients, and tolerance of client pings.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.MaxConcurrentStreams(1000),
		// Full states are large and sent once per connection: pool only
		// small buffers.
		experimental.BufferPool(boundedPool{next: mem.DefaultBufferPool()}),
	}
}

// Register adds the ADS service to g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s)
}

func (s *Server) onChange(c model.Changes) {
	s.mu.Lock()
	add := func(typeURL string, names []string) {
		if len(names) == 0 {
			return
		}
		m, ok := s.pending[typeURL]
		if !ok {
			m = map[string]struct{}{}
			s.pending[typeURL] = m
		}
		for _, n := range names {
			m[n] = struct{}{}
		}
	}
	add(model.AddressType, c.Addresses)
	add(model.AuthorizationType, c.Authorizations)
	for t, names := range c.Other {
		add(t, names)
	}
	if s.pendAt.IsZero() || c.At.Before(s.pendAt) {
		s.pendAt = c.At
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Server) kickTracker() {
	select {
	case s.track <- struct{}{}:
	default:
	}
}

// Run debounces model changes and hands them to the connections, and
// tracks convergence, until ctx ends; then it ends every stream with
// Unavailable so clients reconnect (to another replica), which lets a
// graceful gRPC stop finish.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer s.closeMu.Do(func() { close(s.closing) })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.track:
				s.tracker.update(s.connList())
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		}
		start := time.Now()
		quiet := time.NewTimer(s.cfg.Debounce)
	wait:
		for {
			select {
			case <-ctx.Done():
				quiet.Stop()
				return nil
			case <-s.kick:
				if time.Since(start) < s.cfg.MaxDebounce {
					quiet.Reset(min(s.cfg.Debounce, s.cfg.MaxDebounce-time.Since(start)))
				}
			case <-quiet.C:
				break wait
			}
		}
		s.distribute()
	}
}

// distribute hands the pending change set to every connection.
func (s *Server) distribute() {
	s.mu.Lock()
	pending, at := s.pending, s.pendAt
	s.pending, s.pendAt = map[string]map[string]struct{}{}, time.Time{}
	conns := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	seq := s.seq.Add(1)
	s.tracker.begin(seq, at)
	names := map[string][]string{}
	for t, set := range pending {
		names[t] = slices.Collect(maps.Keys(set))
	}
	for _, c := range conns {
		c.enqueue(seq, at, names)
	}
	if m := s.cfg.Metrics; m != nil {
		m.batches.Inc()
	}
	s.kickTracker()
}

func (s *Server) connList() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.conns))
}

// StreamAggregatedResources is not served: WDS is delta only.
func (s *Server) StreamAggregatedResources(discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return status.Error(codes.Unimplemented, "only DeltaAggregatedResources is served")
}

// DeltaAggregatedResources serves one client stream.
func (s *Server) DeltaAggregatedResources(stream grpc.BidiStreamingServer[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]) error {
	ctx := stream.Context()
	caller := ""
	if s.cfg.Auth != nil {
		who, err := s.cfg.Auth.Authenticate(ctx)
		if err != nil {
			s.log.Warn("xds stream refused", "err", err)
			return status.Errorf(codes.Unauthenticated, "authenticate xds client: %v", err)
		}
		caller = who
	}
	addr := ""
	if p, ok := peer.FromContext(ctx); ok {
		addr = p.Addr.String()
	}
	c := newConn(s, fmt.Sprintf("c%d", s.nextID.Add(1)), addr, caller, s.seq.Load())
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	if m := s.cfg.Metrics; m != nil {
		m.clients.Inc()
	}
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if m := s.cfg.Metrics; m != nil {
			m.clients.Dec()
		}
		s.kickTracker()
		s.log.Info("xds client disconnected", "conn", c.id, "node", c.nodeID())
	}()
	return c.serve(ctx, stream)
}
