package httpproxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/weftmesh/weft/waypoint/flow"
	"github.com/weftmesh/weft/waypoint/route"
)

// mirrorTimeout bounds a mirrored request.
const mirrorTimeout = 10 * time.Second

// mirror sends a copy of r to m and discards the answer. Requests whose
// body is not known to be small are mirrored without reading it ahead: only
// bodiless requests and bodies of a known length up to the retry buffer are
// copied, the others are not mirrored.
func (h *Handler) mirror(r *http.Request, f *flow.Flow, m route.Backend) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength < 0 || r.ContentLength > int64(h.cfg.RetryBufferLimit) {
			h.cfg.Log.Debug("request not mirrored: body too large or of unknown length", "mirror", m.Service.GetHostname())
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
		if err != nil {
			return
		}
		body = b
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	t, err := h.target(f, route.Decision{Route: "mirror", Backend: m})
	if err != nil {
		return
	}
	addrs := h.endpoints(t)
	if len(addrs) == 0 {
		return
	}
	snap := h.cfg.Config()
	b := h.cfg.Backends.Get(t.hostname, snap.Traffic(t.hostname))
	rt := h.roundTripper(snap, t, r)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), mirrorTimeout)
	ep, done := b.Pick(addrs)
	out, err := outgoing(ctx, r, ep, nil)
	if err != nil {
		cancel()
		done(0, err)
		return
	}
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
	}
	if m.Service != nil {
		out.Host = m.Service.GetHostname()
	}
	h.mirrors.Add(1)
	go func() {
		defer h.mirrors.Done()
		defer cancel()
		start := time.Now()
		resp, err := rt.RoundTrip(out)
		done(time.Since(start), err)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}()
}
