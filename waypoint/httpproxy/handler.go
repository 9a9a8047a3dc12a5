package httpproxy

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/authz"
	"github.com/weftmesh/weft/waypoint/backend"
	"github.com/weftmesh/weft/waypoint/breaker"
	"github.com/weftmesh/weft/waypoint/fault"
	"github.com/weftmesh/weft/waypoint/flow"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/ratelimit"
	"github.com/weftmesh/weft/waypoint/route"
	"github.com/weftmesh/weft/waypoint/telemetry"
)

// Mesh is what the proxy reads of discovery; wds.Store implements it.
type Mesh interface {
	Endpoints(svc *wds.Service, port uint16, like netip.Addr) []wds.Endpoint
	ServicesByHostname(h string) []*wds.Service
	WorkloadByIP(a wds.NetAddr) *wds.Workload
}

var _ Mesh = (*wds.Store)(nil)

// Dialer opens upstream connections; upstream.Dialer implements it.
type Dialer interface {
	Dial(ctx context.Context, ep netip.AddrPort, hdr http.Header) (net.Conn, error)
}

// Tracer makes the waypoint a hop of each request's trace;
// tracing.Exporter implements it with span export.
type Tracer interface {
	// Start continues or starts r's trace, rewriting its trace headers
	// for the upstream request, and returns the trace id and the function
	// that ends the waypoint's span.
	Start(r *http.Request, name string) (traceID string, end func(status int, err error))
}

// propagator continues traces without exporting spans.
type propagator struct{}

func (propagator) Start(r *http.Request, _ string) (string, func(int, error)) {
	return telemetry.Propagate(r.Header).TraceIDString(), func(int, error) {}
}

// Config configures a Handler.
type Config struct {
	Mesh Mesh
	// HTTP1 and HTTP2 send requests upstream (upstream.Transports).
	HTTP1, HTTP2 http.RoundTripper
	// Dialer opens tunnels for CONNECT and upgrades.
	Dialer   Dialer
	Backends *backend.Registry
	// Config returns the L7 configuration in force.
	Config   func() *l7config.Snapshot
	Recorder *telemetry.Recorder
	// Gateway is the waypoint's Gateway as "namespace/name".
	Gateway string
	// Network is the waypoint's network.
	Network string
	// Rand draws fault injection percentages; nil uses math/rand/v2.
	Rand func() float64
	// Tracer continues traces; nil propagates trace context without
	// exporting spans.
	Tracer Tracer
	// RetryBufferLimit is the request body size up to which a request can
	// be retried or mirrored (default 64 KiB).
	RetryBufferLimit int
	Log              *slog.Logger
}

// Handler is the request pipeline. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	mirrors sync.WaitGroup // in-flight mirrored requests
	peers   telemetry.PeerCache
}

// NewHandler returns a Handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.Mesh == nil || cfg.HTTP1 == nil || cfg.HTTP2 == nil || cfg.Dialer == nil || cfg.Backends == nil ||
		cfg.Config == nil || cfg.Recorder == nil {
		return nil, errors.New("httpproxy: Mesh, HTTP1, HTTP2, Dialer, Backends, Config and Recorder are required")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Tracer == nil {
		cfg.Tracer = propagator{}
	}
	if cfg.RetryBufferLimit == 0 {
		cfg.RetryBufferLimit = 64 << 10
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg}, nil
}

// Wait waits for the mirrored requests still in flight (each is bounded by
// a timeout); call it after the server stopped taking requests.
func (h *Handler) Wait() { h.mirrors.Wait() }

// ServeHTTP runs the pipeline for one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := flow.FromContext(r.Context())
	if f == nil {
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	snap := h.cfg.Config()
	// One allocation holds the request's telemetry and its counting
	// wrappers.
	x := &exchange{}
	rec := &x.rec
	h.cfg.Recorder.Begin(rec, telemetry.LabelsOf(f))
	rec.Labels.RequestProtocol = "http"
	if isGRPC(r) {
		rec.Labels.RequestProtocol = "grpc"
	}
	rec.Method, rec.Authority, rec.UserAgent, rec.Protocol = r.Method, r.Host, r.UserAgent(), r.Proto
	if r.Header.Get("X-Request-Id") == "" {
		r.Header.Set("X-Request-Id", newRequestID())
	}
	rec.RequestID = r.Header.Get("X-Request-Id")
	var name string
	if _, plain := h.cfg.Tracer.(propagator); !plain {
		name = spanName(f)
	}
	traceID, endSpan := h.cfg.Tracer.Start(r, name)
	rec.TraceID = traceID
	body := &x.body
	body.rc = r.Body
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = body
	}
	cw := &x.w
	cw.ResponseWriter = w
	defer func() {
		rec.RequestBytes = headerSize(r.Header) + body.n
		rec.ResponseBytes = headerSize(cw.Header()) + cw.n
		rec.Code = cw.status()
		endSpan(rec.Code, rec.Err)
		h.cfg.Recorder.Done(rec)
	}()
	normalizePath(r)
	rec.Path = r.URL.EscapedPath()
	h.serve(cw, r, f, snap, rec)
}

// exchange is one request's state that lives as long as its handler.
type exchange struct {
	rec  telemetry.Request
	w    countingWriter
	body countingBody
}

func (h *Handler) serve(w *countingWriter, r *http.Request, f *flow.Flow, snap *l7config.Snapshot, rec *telemetry.Request) {
	// L7 authorization.
	if snap.Policies != nil {
		v := snap.Policies.Evaluate(&authz.Request{
			Gateway: h.cfg.Gateway, Service: f.ServiceName(),
			SourcePrincipal: f.SourcePrincipal(), SourceNamespace: f.Source.Principal.Namespace,
			SourceIP: f.Source.Addr.Addr(), Host: r.Host, Method: r.Method, Path: r.URL.EscapedPath(),
			DestinationIP: f.Destination.Authority.Addr(), Port: f.Destination.Port, Headers: r.Header,
		})
		rec.Policy = v.Policy
		if len(v.Audit) > 0 {
			h.cfg.Log.Info("audit policies matched", "policies", v.Audit, "request_id", rec.RequestID)
		}
		if !v.Allow {
			rec.Err = errors.New("denied by l7 policy")
			localReply(w, http.StatusForbidden, "RBAC: access denied")
			return
		}
	}

	// Routing: a pod addressed directly has no routes.
	var d route.Decision
	if f.Destination.Service != nil {
		d = snap.Routes.Match(f.Destination.Hostname(), f.Destination.Port, r)
	} else {
		d = route.Decision{Route: route.DefaultRoute}
	}
	rec.Route = d.Route
	switch d.Action {
	case route.Redirect:
		w.Header().Set("Location", d.Location)
		w.WriteHeader(d.Status)
		return
	case route.Respond:
		if d.Status == 0 {
			d.Status = http.StatusInternalServerError
		}
		localReply(w, d.Status, d.Body)
		return
	}

	// Request timeout bounds everything from here, retries included.
	ctx := r.Context()
	if t := d.Timeouts.GetRequest(); t != nil && t.AsDuration() > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.AsDuration())
		defer cancel()
	}

	// Fault injection.
	if d.Fault != nil {
		delay, abort := fault.Decide(d.Fault, fault.Rand(h.cfg.Rand))
		if delay > 0 {
			rec.Labels.ResponseFlags = "DI"
			if !sleep(ctx, delay) {
				timeoutReply(w, rec, ctx)
				return
			}
		}
		if abort > 0 {
			rec.Labels.ResponseFlags = "FI"
			localReply(w, abort, "fault filter abort")
			return
		}
	}

	// Local rate limit.
	if l := snap.Limiters[d.Route]; l != nil {
		if ok, after := l.Allow(l.KeyFor(f.SourcePrincipal())); !ok {
			rec.Labels.ResponseFlags = "RL"
			w.Header().Set("Retry-After", strconv.FormatInt(ratelimit.RetryAfterSeconds(after), 10))
			localReply(w, http.StatusTooManyRequests, "local_rate_limited")
			return
		}
	}

	d.ApplyRequest(r)
	t, err := h.target(f, d)
	if err != nil {
		rec.Labels.ResponseFlags, rec.Err = "NR", err
		localReply(w, http.StatusServiceUnavailable, "no healthy upstream")
		return
	}
	if t.service != nil {
		rec.Labels.DestinationService = t.service.Hostname()
		rec.Labels.DestinationServiceNamespace = t.service.Namespace()
		rec.Labels.DestinationServiceName = t.service.Proto.GetName()
	}
	b := h.cfg.Backends.Get(t.hostname, snap.Traffic(t.hostname))
	// An HTTP/1.1 request (or an upgrade, which gets a tunnel of its own)
	// holds a connection while active, so it waits for a slot of the
	// backend's HTTP/1.1 pool; an HTTP/2 request only counts as active.
	release, err := b.Requests(!isUpgrade(r) && multiplexed(snap, t, r)).Acquire(ctx)
	if err != nil {
		if errors.Is(err, breaker.ErrOverflow) {
			rec.Labels.ResponseFlags, rec.Err = "UO", err
			localReply(w, http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers. reason: overflow")
			return
		}
		timeoutReply(w, rec, ctx)
		return
	}
	defer release()

	for _, m := range d.Mirrors {
		h.mirror(r, f, m)
	}
	if isUpgrade(r) {
		h.upgrade(w, r, f, t, b, rec)
		return
	}
	h.forward(ctx, w, r, f, t, b, d, snap, rec)
}

// normalizePath rewrites the request path as authorization matches it, so
// the backend sees what was authorized.
func normalizePath(r *http.Request) {
	if r.Method == http.MethodConnect {
		return
	}
	esc := r.URL.EscapedPath()
	n := authz.NormalizePath(esc)
	if n == esc {
		return
	}
	if u, err := url.Parse(n); err == nil {
		r.URL.Path, r.URL.RawPath = u.Path, u.RawPath
	}
}

func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodConnect || (r.ProtoMajor == 1 && r.Header.Get("Upgrade") != "" &&
		headerHasToken(r.Header, "Connection", "upgrade"))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// spanName names the waypoint's span after the destination, as
// "<hostname>:<port>" (or the pod address).
func spanName(f *flow.Flow) string {
	if h := f.Destination.Hostname(); h != "" {
		return h + ":" + strconv.Itoa(int(f.Destination.Port))
	}
	return f.Destination.Authority.String()
}
