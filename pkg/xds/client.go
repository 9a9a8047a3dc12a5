package xds

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Handler consumes the resources the control plane sends. It is implemented
// by the consumer (ztunnel state, waypoint config).
type Handler interface {
	// Apply gets one response's added/updated resources and removed names
	// for typeURL. A non-nil error NACKs the response (error_detail); the
	// client keeps running and the consumer keeps its last good state.
	// Apply is called from a single goroutine, one response at a time, and
	// may call Client.Subscribe.
	Apply(typeURL string, resources []*discoveryv3.Resource, removed []string) error
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(typeURL string, resources []*discoveryv3.Resource, removed []string) error

// Apply calls f.
func (f HandlerFunc) Apply(typeURL string, resources []*discoveryv3.Resource, removed []string) error {
	return f(typeURL, resources, removed)
}

var _ Handler = HandlerFunc(nil)

// Config configures a Client.
type Config struct {
	// Address is the gRPC target of the control plane, e.g. "istiod:15012".
	Address string
	// TLS secures the connection; nil means plaintext.
	TLS *tls.Config
	// Node identifies this client; it is sent on the first request of each
	// stream.
	Node *corev3.Node
	// Types are subscribed to with a wildcard, in this order, on every stream.
	Types []string
	// Handler receives every response. Required.
	Handler Handler
	// Log receives connection events and NACKs; nil discards.
	Log *slog.Logger
	// DialOptions are appended to the client's own (e.g. per-RPC bearer
	// token credentials).
	DialOptions []grpc.DialOption
	// InitialBackoff is the first reconnect delay (default 100 ms); it
	// doubles up to MaxBackoff (default 15 s) and resets after a stream
	// that delivered a response.
	InitialBackoff time.Duration
	// MaxBackoff caps the reconnect delay.
	MaxBackoff time.Duration
}

func (c Config) validate() error {
	if c.Address == "" {
		return errors.New("xds client: address is required")
	}
	if c.Handler == nil {
		return errors.New("xds client: handler is required")
	}
	for _, t := range c.Types {
		if t == "" {
			return errors.New("xds client: empty type url")
		}
	}
	return nil
}

// typeState is what the client remembers about one type URL across streams.
type typeState struct {
	wildcard bool
	names    map[string]struct{} // explicit (on-demand) subscriptions
	versions map[string]string   // accepted resource name -> version
	nonce    string              // last ACKed nonce
	version  string              // last ACKed system_version_info
	acks     uint64
	nacks    uint64
	lastNACK string
	synced   bool
}

// Client is a delta ADS client. It is safe for concurrent use.
type Client struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	types      map[string]*typeState
	order      []string // type URLs in subscription order
	connected  bool
	streams    uint64
	out        *outbox // the current stream's send queue, nil when disconnected
	synced     chan struct{}
	syncedDone bool
}

// NewClient returns a client for cfg. It does not connect until Run.
func NewClient(cfg Config) *Client {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		cfg:    cfg,
		log:    log.With("xds_server", cfg.Address),
		types:  map[string]*typeState{},
		synced: make(chan struct{}),
	}
	for _, t := range cfg.Types {
		ts := c.typeLocked(t)
		ts.wildcard = true
	}
	if len(cfg.Types) == 0 {
		c.markSyncedLocked()
	}
	return c
}

func (c *Client) typeLocked(typeURL string) *typeState {
	ts, ok := c.types[typeURL]
	if !ok {
		ts = &typeState{names: map[string]struct{}{}, versions: map[string]string{}}
		c.types[typeURL] = ts
		c.order = append(c.order, typeURL)
	}
	return ts
}

// Synced is closed once every wildcard type has had one response accepted.
func (c *Client) Synced() <-chan struct{} { return c.synced }

func (c *Client) markSyncedLocked() {
	if !c.syncedDone {
		c.syncedDone = true
		close(c.synced)
	}
}

// Subscribe asks for the named resources of typeURL in addition to what is
// already subscribed (names may be resource names or "<network>/<ip>"
// aliases). Subscriptions persist across reconnects. It never blocks on the
// network.
func (c *Client) Subscribe(typeURL string, names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.typeLocked(typeURL)
	var added []string
	for _, n := range names {
		if _, ok := ts.names[n]; ok || n == "" {
			continue
		}
		ts.names[n] = struct{}{}
		added = append(added, n)
	}
	if len(added) > 0 && c.out != nil {
		c.out.push(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesSubscribe: added})
	}
}

// Unsubscribe drops explicit subscriptions made with Subscribe. Resources
// still covered by a wildcard subscription keep arriving.
func (c *Client) Unsubscribe(typeURL string, names ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts, ok := c.types[typeURL]
	if !ok {
		return
	}
	var removed []string
	for _, n := range names {
		if _, ok := ts.names[n]; !ok {
			continue
		}
		delete(ts.names, n)
		if !ts.wildcard {
			delete(ts.versions, n)
		}
		removed = append(removed, n)
	}
	if len(removed) > 0 && c.out != nil {
		c.out.push(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResourceNamesUnsubscribe: removed})
	}
}

// Run connects and keeps a stream open until ctx ends, reconnecting with
// back-off and resuming with the versions of the resources it accepted. It
// returns nil when ctx ends and an error only for an unusable Config.
func (c *Client) Run(ctx context.Context) error {
	if err := c.cfg.validate(); err != nil {
		return err
	}
	creds := insecure.NewCredentials()
	if c.cfg.TLS != nil {
		creds = credentials.NewTLS(c.cfg.TLS)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
	}
	opts = append(opts, c.cfg.DialOptions...)
	conn, err := grpc.NewClient(c.cfg.Address, opts...)
	if err != nil {
		return fmt.Errorf("xds client: dial %s: %w", c.cfg.Address, err)
	}
	defer func() { _ = conn.Close() }() // nothing left to report to once Run ends
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)

	bo := newBackoff(c.cfg.InitialBackoff, c.cfg.MaxBackoff)
	for {
		progressed, err := c.runStream(ctx, ads)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			bo.reset()
		}
		d := bo.next()
		c.log.Warn("xds stream ended, reconnecting", "err", err, "backoff", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// runStream runs one stream. progressed reports whether any response arrived.
func (c *Client) runStream(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (progressed bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ads.DeltaAggregatedResources(sctx)
	if err != nil {
		return false, fmt.Errorf("open delta ads stream: %w", err)
	}

	out := newOutbox()
	c.mu.Lock()
	for i, req := range c.initialRequestsLocked() {
		if i == 0 {
			req.Node = c.cfg.Node
		}
		out.push(req)
	}
	c.out = out
	c.connected = true
	c.streams++
	c.mu.Unlock()
	c.log.Info("xds stream opened")

	defer func() {
		c.mu.Lock()
		if c.out == out {
			c.out = nil
			c.connected = false
		}
		c.mu.Unlock()
	}()

	sendErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sendErr <- c.sendLoop(sctx, stream, out)
	}()
	defer wg.Wait()
	defer cancel()

	for {
		resp, err := stream.Recv()
		if err != nil {
			select {
			case e := <-sendErr:
				if e != nil {
					return progressed, fmt.Errorf("send: %w", e)
				}
			default:
			}
			return progressed, fmt.Errorf("receive: %w", err)
		}
		progressed = true
		out.push(c.handle(resp))
	}
}

func (c *Client) sendLoop(ctx context.Context, stream grpc.BidiStreamingClient[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse], out *outbox) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-out.ready:
		}
		for _, req := range out.drain() {
			if err := stream.Send(req); err != nil {
				return err
			}
		}
	}
}

// initialRequestsLocked builds the first request of every known type for a
// new stream: wildcard and explicit names plus the versions accepted so far.
func (c *Client) initialRequestsLocked() []*discoveryv3.DeltaDiscoveryRequest {
	var reqs []*discoveryv3.DeltaDiscoveryRequest
	for _, t := range c.order {
		ts := c.types[t]
		if !ts.wildcard && len(ts.names) == 0 {
			continue
		}
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: t}
		if ts.wildcard {
			req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, Wildcard)
		}
		names := make([]string, 0, len(ts.names))
		for n := range ts.names {
			names = append(names, n)
		}
		slices.Sort(names)
		req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, names...)
		if len(ts.versions) > 0 {
			req.InitialResourceVersions = make(map[string]string, len(ts.versions))
			for n, v := range ts.versions {
				req.InitialResourceVersions[n] = v
			}
		}
		reqs = append(reqs, req)
	}
	return reqs
}

// handle applies one response and returns the ACK or NACK for it. A
// response of a type never subscribed (by Config.Types or Subscribe) is
// NACKed without reaching the handler.
func (c *Client) handle(resp *discoveryv3.DeltaDiscoveryResponse) *discoveryv3.DeltaDiscoveryRequest {
	typeURL := resp.GetTypeUrl()
	ack := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL, ResponseNonce: resp.GetNonce()}
	c.mu.Lock()
	_, subscribed := c.types[typeURL]
	c.mu.Unlock()
	if !subscribed {
		// Not the handler's business, and no state is kept for it: a
		// server cannot make the client remember types it never asked for.
		msg := fmt.Sprintf("response of type %q, which this client did not subscribe to", typeURL)
		c.log.Warn("xds response rejected", "type", typeURL, "nonce", resp.GetNonce(), "err", msg)
		ack.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: msg}
		return ack
	}
	err := c.cfg.Handler.Apply(typeURL, resp.GetResources(), resp.GetRemovedResources())

	c.mu.Lock()
	defer c.mu.Unlock()
	ts := c.typeLocked(typeURL)
	if err != nil {
		ts.nacks++
		ts.lastNACK = err.Error()
		c.log.Warn("xds response rejected", "type", typeURL, "nonce", resp.GetNonce(), "err", err)
		ack.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
		return ack
	}
	for _, r := range resp.GetResources() {
		ts.versions[r.GetName()] = r.GetVersion()
	}
	for _, n := range resp.GetRemovedResources() {
		delete(ts.versions, n)
	}
	ts.acks++
	ts.nonce = resp.GetNonce()
	ts.version = resp.GetSystemVersionInfo()
	if !ts.synced {
		ts.synced = true
		all := true
		for _, t := range c.order {
			if s := c.types[t]; s.wildcard && !s.synced {
				all = false
			}
		}
		if all {
			c.markSyncedLocked()
		}
	}
	return ack
}
