package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/backend"
	"github.com/weftmesh/weft/waypoint/breaker"
	"github.com/weftmesh/weft/waypoint/flow"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/retry"
	"github.com/weftmesh/weft/waypoint/route"
	"github.com/weftmesh/weft/waypoint/telemetry"
	"github.com/weftmesh/weft/waypoint/upstream"
)

// target is where a routed request goes.
type target struct {
	// hostname keys the backend state: the Service hostname, or the pod
	// address for a pod destination.
	hostname string
	service  *wds.Service
	port     uint16
	// pod is the endpoint of a pod destination.
	pod netip.AddrPort
	// like picks the endpoints' address family.
	like netip.Addr
}

var errNoService = errors.New("backend service unknown")

func (h *Handler) target(f *flow.Flow, d route.Decision) (target, error) {
	dst := f.Destination
	t := target{like: dst.Authority.Addr()}
	if dst.Service == nil {
		t.hostname, t.pod, t.port = dst.Authority.String(), dst.Authority, dst.Port
		return t, nil
	}
	t.service, t.port = dst.Service, dst.Port
	if !d.Default() && d.Backend.Service != nil {
		if d.Backend.Port != 0 {
			t.port = d.Backend.Port
		}
		host, ns := d.Backend.Service.GetHostname(), d.Backend.Service.GetNamespace()
		if !strings.EqualFold(host, dst.Hostname()) || (ns != "" && ns != dst.Service.Namespace()) {
			t.service = nil
			for _, s := range h.cfg.Mesh.ServicesByHostname(host) {
				if t.service == nil || s.Namespace() == ns {
					t.service = s
				}
			}
			if t.service == nil {
				return t, fmt.Errorf("%w: %s", errNoService, host)
			}
		}
	}
	t.hostname = t.service.Hostname()
	return t, nil
}

// endpoints lists the target's endpoint addresses.
func (h *Handler) endpoints(t target) []netip.AddrPort {
	if t.service == nil {
		return []netip.AddrPort{t.pod}
	}
	eps := h.cfg.Mesh.Endpoints(t.service, t.port, t.like)
	out := make([]netip.AddrPort, len(eps))
	for i, ep := range eps {
		out[i] = ep.Addr
	}
	return out
}

// describe fills the destination workload labels from the endpoint used.
func (h *Handler) describe(rec *telemetry.Request, ep netip.AddrPort) {
	if w := h.cfg.Mesh.WorkloadByIP(wds.NetAddr{Network: h.cfg.Network, IP: ep.Addr()}); w != nil {
		rec.Labels.Destination = h.peers.Of(w)
	}
}

// multiplexed reports whether r goes upstream over HTTP/2: for ports
// declared HTTP2 or GRPC and for requests that arrived over HTTP/2 on
// undeclared ports; else HTTP/1.1.
func multiplexed(snap *l7config.Snapshot, t target, r *http.Request) bool {
	switch snap.Protocol(t.hostname, t.port) {
	case l7api.Protocol_HTTP2, l7api.Protocol_GRPC:
		return true
	case l7api.Protocol_HTTP:
		return false
	}
	return r.ProtoMajor == 2
}

// roundTripper chooses the upstream transport as multiplexed says.
func (h *Handler) roundTripper(snap *l7config.Snapshot, t target, r *http.Request) http.RoundTripper {
	if multiplexed(snap, t, r) {
		return h.cfg.HTTP2
	}
	return h.cfg.HTTP1
}

// forward sends r to one of t's endpoints, retrying as the route's policy
// and the backend's budget allow, and copies the response to w.
func (h *Handler) forward(ctx context.Context, w *countingWriter, r *http.Request, f *flow.Flow, t target, b *backend.Backend,
	d route.Decision, snap *l7config.Snapshot, rec *telemetry.Request) {
	policy := snap.Retries[d.Route]
	var budget *retry.Budget
	if policy != nil {
		budget = b.Budget(d.Route, policy)
		budget.Begin()
		defer budget.End()
	}
	var replay *retry.Body
	if policy.Attempts() > 0 && r.Body != nil && r.Body != http.NoBody {
		replay = retry.NewBody(r.Body, h.cfg.RetryBufferLimit)
		defer func() { _ = replay.Close() }()
	}
	perTry := policy.PerTryTimeout()
	if perTry == 0 {
		perTry = d.Timeouts.GetBackendRequest().AsDuration()
	}
	// The attempts share the request's header, cleaned once (mirrors,
	// which run beside them, copied it already).
	removeHopByHop(r.Header)
	h2 := multiplexed(snap, t, r)
	rt := h.cfg.HTTP1
	if h2 {
		rt = h.cfg.HTTP2
	}

	var resp *http.Response
	var err error
	var cancelTry context.CancelFunc = func() {}
	// retrying is set while a retry admitted by the budget is in flight:
	// from AllowRetry until that attempt's outcome is known and, for the
	// attempt whose response is sent, until the response is copied.
	retrying := false
	defer func() {
		if retrying {
			budget.RetryDone()
		}
	}()
	for attempt := 1; ; attempt++ {
		rec.Attempts = attempt
		addrs := h.endpoints(t)
		if len(addrs) == 0 {
			err = wds.ErrNoEndpoints
			break
		}
		b.SetEndpoints(t.port, addrs)
		ep, done := b.Pick(addrs)
		rec.Upstream = ep
		h.describe(rec, ep)
		// New multiplexed upstream connections take a connection slot of
		// the backend's pool; an HTTP/1.1 request holds its slot already.
		tctx := ctx
		if h2 {
			tctx = upstream.WithConnLimiter(ctx, b.Pool)
		}
		cancelTry = func() {}
		if perTry > 0 {
			tctx, cancelTry = context.WithTimeout(tctx, perTry)
		}
		out, oerr := outgoingShared(tctx, r, r.Header, ep, replay)
		if oerr != nil {
			done(0, oerr)
			cancelTry()
			err = oerr
			break
		}
		start := time.Now()
		resp, err = rt.RoundTrip(out)
		done(time.Since(start), err)
		status := 0
		if err == nil {
			status = resp.StatusCode
		}
		if b.Outliers != nil {
			b.Outliers.Report(ep, status, err)
		}
		retryable := err != nil && policy.ShouldRetry(attempt, 0, classify(err, tctx)) ||
			err == nil && (policy.ShouldRetry(attempt, status, nil) || grpcRetry(policy, attempt, resp))
		if !retryable || ctx.Err() != nil || (replay != nil && !replay.Replayable()) {
			break
		}
		// This attempt is over: a retry it was leaves the budget before the
		// next one asks to enter.
		if retrying {
			retrying = false
			budget.RetryDone()
		}
		if !budget.AllowRetry() {
			break
		}
		retrying = true
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			resp = nil
		}
		cancelTry()
		if !sleep(ctx, policy.Backoff(attempt)) {
			break
		}
	}
	defer cancelTry()
	if err != nil || resp == nil {
		if err == nil {
			err = ctx.Err()
		}
		rec.Err = err
		switch {
		case errors.Is(err, wds.ErrNoEndpoints):
			rec.Labels.ResponseFlags = "UH"
			localReply(w, http.StatusServiceUnavailable, "no healthy upstream")
		case errors.Is(err, breaker.ErrOverflow):
			rec.Labels.ResponseFlags = "UO"
			localReply(w, http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers. reason: overflow")
		case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
			timeoutReply(w, rec, ctx)
		default:
			rec.Labels.ResponseFlags = "UF"
			if rec.Attempts > 1 {
				rec.Labels.ResponseFlags = "URX"
			}
			localReply(w, http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers")
		}
		return
	}
	if rec.Attempts > 1 && resp.StatusCode >= 500 {
		rec.Labels.ResponseFlags = "URX"
	}
	d.ApplyResponse(resp.Header)
	copyResponse(w, resp, rec)
}

// classify gives the retry policy an attempt's error: a per-try timeout
// as context.DeadlineExceeded, anything else as it came. The upstream
// transports mark dial and CONNECT failures with retry.ConnectFailure and
// breakages before the response with retry.Reset, and leave a connection
// limit's overflow and errors of an ended request context unmarked, so
// they are not retried.
func classify(err error, tctx context.Context) error {
	if tctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded
	}
	return err
}

// grpcRetry reports a retryable grpc-status in a trailers-only response.
func grpcRetry(p *retry.Policy, attempt int, resp *http.Response) bool {
	s := resp.Header.Get("Grpc-Status")
	if s == "" || s == "0" {
		return false
	}
	var code int
	if _, err := fmt.Sscan(s, &code); err != nil {
		return false
	}
	return p.ShouldRetryGRPC(attempt, code)
}

// outgoing builds the upstream request for one attempt of a mirror: its
// headers are a copy, without the hop-by-hop ones.
func outgoing(ctx context.Context, r *http.Request, ep netip.AddrPort, replay *retry.Body) (*http.Request, error) {
	h := r.Header.Clone()
	removeHopByHop(h)
	out, err := outgoingShared(ctx, r, h, ep, replay)
	if err == nil && out.Trailer != nil {
		// A mirror runs beside the attempts: it gets the trailers known now.
		out.Trailer = out.Trailer.Clone()
	}
	return out, err
}

// outgoingShared builds the upstream request for one attempt with
// header h, which it shares (it is not copied per attempt): the caller
// must have removed the hop-by-hop headers and must not change h while
// the attempt may read it.
func outgoingShared(ctx context.Context, r *http.Request, h http.Header, ep netip.AddrPort, replay *retry.Body) (*http.Request, error) {
	out := r.WithContext(ctx)
	out.Header = h
	// The trailer map is shared, not copied: the request body's reader
	// fills in its values at the body's end, after the attempt started, and
	// the transport reads them only once it has sent the body.
	out.Trailer = r.Trailer
	out.RequestURI = ""
	out.URL = &url.URL{Scheme: "http", Host: ep.String(), Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out.Host = r.Host
	out.Close = false
	switch {
	case r.ContentLength == 0 && (r.Body == nil || r.Body == http.NoBody):
		out.Body = http.NoBody
	case replay != nil:
		body, err := replay.Attempt()
		if err != nil {
			return nil, err
		}
		out.Body, out.GetBody = body, replay.Attempt
	}
	return out, nil
}

// copyResponse writes resp to w: headers, the body, then the trailers.
// A streaming response (see streaming) is flushed after every read so it
// streams; any other body is left to the response writer's buffer, which
// the server flushes when full and when the handler returns, so a small
// response leaves in one write.
func copyResponse(w *countingWriter, resp *http.Response, rec *telemetry.Request) {
	defer func() { _ = resp.Body.Close() }()
	removeHopByHop(resp.Header)
	// resp.Header is ours alone and not changed after this point, so its
	// value slices are shared rather than copied.
	dst := w.Header()
	for k, vs := range resp.Header {
		dst[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	rec.GRPCStatus = resp.Header.Get("Grpc-Status")
	var rc *http.ResponseController
	if streaming(resp) {
		rc = http.NewResponseController(w)
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				rec.Err = werr
				return
			}
			if rc != nil {
				_ = rc.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			// The upstream broke mid-body: reset the client's stream rather
			// than end it as if complete.
			rec.Err, rec.Labels.ResponseFlags = err, "UR"
			panic(http.ErrAbortHandler)
		}
	}
	// Trailers known only now are sent with net/http's TrailerPrefix.
	for k, vs := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vs
	}
	if s := resp.Trailer.Get("Grpc-Status"); s != "" {
		rec.GRPCStatus = s
	}
}

// copyBuffers holds the body copy buffers, so a request does not allocate
// (and the collector does not sweep) 32 KiB each.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// streaming reports whether resp is a stream to flush as it comes, as
// net/http/httputil.ReverseProxy decides: a body of unknown length (which
// every HTTP/2 stream without content-length, gRPC included, is) or an
// event stream; gRPC is named too, whatever its headers say. A
// 101 Switching Protocols never gets here (upgrades are tunnelled).
func streaming(resp *http.Response) bool {
	if resp.ContentLength == -1 {
		return true
	}
	ct := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	return strings.EqualFold(ct, "text/event-stream") || strings.HasPrefix(strings.ToLower(ct), "application/grpc")
}
