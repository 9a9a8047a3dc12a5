package xds

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// watch is one connection's subscription to one type.
type watch struct {
	wildcard bool
	names    map[string]struct{} // explicit subscriptions (names or aliases)
	sent     map[string]string   // resource name -> version the client holds
	dirty    map[string]struct{} // resource names to re-evaluate
	forced   map[string]struct{} // names just subscribed: answer even if absent
	dirtyAt  time.Time           // earliest model change behind dirty
	full     bool                // re-evaluate everything
	initial  bool                // owe the client a first response, even empty

	ackNonce string
	acks     uint64
	nacks    uint64
	lastNACK string
}

func newWatch() *watch {
	return &watch{names: map[string]struct{}{}, sent: map[string]string{}, dirty: map[string]struct{}{}, forced: map[string]struct{}{}}
}

type outstanding struct {
	typeURL string
	seq     uint64
	at      time.Time // change time (zero for subscription answers)
	sentAt  time.Time
	names   []string // resources added, updated or removed, for the debug view
}

// conn is one client stream.
type conn struct {
	s                *Server
	id, peer, caller string
	connectedAt      time.Time
	signal           chan struct{}

	mu          sync.Mutex
	node        *corev3.Node
	watches     map[string]*watch
	nonce       uint64
	outstanding map[string]outstanding
	seenSeq     uint64 // latest change batch merged into the watches
	builtSeq    uint64 // latest batch fully turned into responses
}

func newConn(s *Server, id, peer, caller string, seq uint64) *conn {
	return &conn{
		s: s, id: id, peer: peer, caller: caller, connectedAt: time.Now(),
		signal:      make(chan struct{}, 1),
		watches:     map[string]*watch{},
		outstanding: map[string]outstanding{},
		seenSeq:     seq,
		builtSeq:    seq,
	}
}

func (c *conn) wake() {
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *conn) nodeID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.node.GetId()
}

// enqueue merges a change batch into the connection's pending work.
func (c *conn) enqueue(seq uint64, at time.Time, names map[string][]string) {
	c.mu.Lock()
	for t, ns := range names {
		w := c.watches[t]
		if w == nil {
			continue
		}
		for _, n := range ns {
			w.dirty[n] = struct{}{}
		}
		if w.dirtyAt.IsZero() || at.Before(w.dirtyAt) {
			w.dirtyAt = at
		}
	}
	c.seenSeq = seq
	c.mu.Unlock()
	c.wake()
}

// doneSeq is the latest batch this connection has received and ACKed (or
// did not need).
func (c *conn) doneSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := c.builtSeq
	for _, o := range c.outstanding {
		if o.seq == 0 {
			return 0
		}
		done = min(done, o.seq-1)
	}
	return done
}

func (c *conn) serve(ctx context.Context, stream grpc.BidiStreamingServer[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	werr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		werr <- c.writeLoop(ctx, stream)
		cancel()
	}()
	defer wg.Wait()
	for {
		req, err := stream.Recv()
		if err != nil {
			cancel()
			select {
			case e := <-werr:
				if e != nil {
					return e
				}
			default:
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.handle(req)
	}
}

// handle processes one client request: ACK/NACK and subscription changes.
func (c *conn) handle(req *discoveryv3.DeltaDiscoveryRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node == nil && req.GetNode() != nil {
		c.node = req.GetNode()
		c.s.log.Info("xds client connected", "conn", c.id, "node", c.node.GetId(), "peer", c.peer, "caller", c.caller)
	}
	t := req.GetTypeUrl()
	if !c.s.served(t) {
		c.s.log.Warn("xds request for an unserved type", "conn", c.id, "type", t)
		return
	}
	w, existed := c.watches[t]
	if !existed {
		w = newWatch()
		c.watches[t] = w
		w.initial, w.full = true, true
		for n, v := range req.GetInitialResourceVersions() {
			w.sent[n] = v
		}
		if len(req.GetResourceNamesSubscribe()) == 0 {
			w.wildcard = true // legacy wildcard: a first request without names
		}
	}
	if nonce := req.GetResponseNonce(); nonce != "" {
		c.ackLocked(w, t, nonce, req)
	}
	for _, n := range req.GetResourceNamesSubscribe() {
		if n == "*" {
			if !w.wildcard {
				w.wildcard, w.full = true, true
			}
			continue
		}
		if _, ok := w.names[n]; !ok {
			w.names[n] = struct{}{}
			w.forced[n] = struct{}{}
		}
	}
	for _, n := range req.GetResourceNamesUnsubscribe() {
		if n == "*" {
			w.wildcard = false
			c.forgetUnwatchedLocked(t, w)
			continue
		}
		delete(w.names, n)
		delete(w.forced, n)
		c.forgetUnwatchedLocked(t, w)
	}
	c.wake()
}

// forgetUnwatchedLocked drops what the client holds but no longer watches;
// per the protocol the client discards those itself, without a removal.
func (c *conn) forgetUnwatchedLocked(t string, w *watch) {
	if w.wildcard {
		return
	}
	for n := range w.sent {
		if r := c.s.src.Get(t, n); r == nil || !watches(w, r.Name, r.Aliases) {
			if _, explicit := w.names[n]; !explicit {
				delete(w.sent, n)
			}
		}
	}
}

func (c *conn) ackLocked(w *watch, t, nonce string, req *discoveryv3.DeltaDiscoveryRequest) {
	o, known := c.outstanding[nonce]
	delete(c.outstanding, nonce)
	m := c.s.cfg.Metrics
	if e := req.GetErrorDetail(); e != nil {
		w.nacks++
		w.lastNACK = e.GetMessage()
		c.s.log.Warn("xds NACK", "conn", c.id, "node", c.node.GetId(), "type", t, "nonce", nonce, "error", e.GetMessage())
		if m != nil {
			m.nacks.WithLabelValues(t).Inc()
		}
	} else {
		w.acks++
		w.ackNonce = nonce
	}
	if known && m != nil {
		m.ackLatency.Observe(time.Since(o.sentAt).Seconds())
	}
	if known {
		c.s.kickTracker()
	}
}

func (s *Server) served(t string) bool {
	return slices.Contains(s.cfg.Types, t)
}

func watches(w *watch, name string, aliases []string) bool {
	if w.wildcard {
		return true
	}
	if _, ok := w.names[name]; ok {
		return true
	}
	for _, a := range aliases {
		if _, ok := w.names[a]; ok {
			return true
		}
	}
	return false
}

func (c *conn) writeLoop(ctx context.Context, stream grpc.BidiStreamingServer[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse]) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.s.closing:
			return status.Error(codes.Unavailable, "xds server shutting down")
		case <-c.signal:
		}
		sentAny := false
		for _, t := range c.s.cfg.Types {
			release := c.s.fullPushSlot(ctx, c, t)
			resp, at := c.build(t)
			if resp == nil {
				release()
				continue
			}
			err := stream.Send(resp)
			release()
			if err != nil {
				return fmt.Errorf("send %s: %w", t, err)
			}
			sentAny = true
			if m := c.s.cfg.Metrics; m != nil {
				m.pushes.WithLabelValues(t).Inc()
				m.resources.WithLabelValues(t).Add(float64(len(resp.Resources) + len(resp.RemovedResources)))
				if !at.IsZero() {
					m.pushLatency.Observe(time.Since(at).Seconds())
				}
			}
		}
		if !sentAny {
			c.s.kickTracker()
		}
	}
}

// build turns the pending work of type t into one response, or nil.
func (c *conn) build(t string) (*discoveryv3.DeltaDiscoveryResponse, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.watches[t]
	if w == nil {
		c.builtSeq = c.seenSeq
		return nil, time.Time{}
	}
	resp := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: t}
	seen := map[string]struct{}{}
	consider := func(cand string) {
		if _, dup := seen[cand]; dup {
			return
		}
		seen[cand] = struct{}{}
		r := c.s.src.Get(t, cand)
		if r == nil {
			if _, had := w.sent[cand]; had {
				delete(w.sent, cand)
				resp.RemovedResources = append(resp.RemovedResources, cand)
			} else if _, asked := w.forced[cand]; asked {
				resp.RemovedResources = append(resp.RemovedResources, cand)
			}
			return
		}
		if r.Name != cand {
			if _, dup := seen[r.Name]; dup {
				return
			}
			seen[r.Name] = struct{}{}
		}
		if !watches(w, r.Name, r.Aliases) {
			if _, had := w.sent[r.Name]; had {
				delete(w.sent, r.Name)
				resp.RemovedResources = append(resp.RemovedResources, r.Name)
			}
			return
		}
		if w.sent[r.Name] == r.Version {
			return
		}
		w.sent[r.Name] = r.Version
		resp.Resources = append(resp.Resources, &discoveryv3.Resource{Name: r.Name, Aliases: r.Aliases, Version: r.Version, Resource: r.Any})
	}
	if w.full {
		if w.wildcard {
			for _, r := range c.s.src.All(t) {
				consider(r.Name)
			}
		}
		for n := range w.names {
			consider(n)
		}
		for n := range w.sent {
			consider(n)
		}
	}
	for n := range w.dirty {
		consider(n)
	}
	for n := range w.forced {
		consider(n)
	}
	at := w.dirtyAt
	initial := w.initial
	w.full, w.initial, w.dirtyAt = false, false, time.Time{}
	clear(w.dirty)
	clear(w.forced)
	c.builtSeq = c.seenSeq
	if len(resp.Resources) == 0 && len(resp.RemovedResources) == 0 && !initial {
		return nil, time.Time{}
	}
	c.nonce++
	resp.Nonce = c.id + "-" + strconv.FormatUint(c.nonce, 10)
	resp.SystemVersionInfo = strconv.FormatUint(c.seenSeq, 10)
	carried := make([]string, 0, len(resp.Resources)+len(resp.RemovedResources))
	for _, r := range resp.Resources {
		carried = append(carried, r.Name)
	}
	carried = append(carried, resp.RemovedResources...)
	c.outstanding[resp.Nonce] = outstanding{typeURL: t, seq: c.seenSeq, at: at, sentAt: time.Now(), names: carried}
	return resp, at
}
