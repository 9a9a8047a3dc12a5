package proxy

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/weftmesh/weft/ztunnel/telemetry"
)

// Connection caps. ztunnel bounds how many proxied connections it holds so
// that a flood of connections is refused clearly instead of growing its
// memory until the node kills it:
//
//   - per pod and per direction: a pod's outbound connections (its 15001)
//     and its inbound connections (15006 and the CONNECT streams of 15008)
//     are counted apart, each against MaxConnsPerPod, so that a flood
//     towards a pod cannot stop it from making calls of its own, nor a
//     runaway client stop it from being served;
//   - per node: every proxied connection of every pod, both directions,
//     against MaxConnsPerNode.
//
// A connection over a cap is refused before anything is resolved or
// dialled: an outbound or plaintext inbound connection is reset (RST, so
// the application sees ECONNRESET rather than an empty answer), an HBONE
// CONNECT is answered 503 Service Unavailable, the overload answer of
// Envoy and of our other refusals for an unreachable upstream. Each refusal
// is counted in weft_ztunnel_connections_refused_total{direction,reason}
// and logged at most once per second per pod, with the number refused
// since the previous line.
const (
	// DefaultMaxConnsPerPod is the default cap per pod and direction:
	// twice pkg/hbone's per-client-identity stream cap (10,000), and a
	// third of the node cap, so one runaway pod cannot exhaust its node.
	DefaultMaxConnsPerPod = 20000
	// DefaultMaxConnsPerNode is the default cap across all pods. ztunnel
	// holds about 13.5 KiB of RSS per proxied connection (12.5 KiB of Go
	// heap and stacks; TestMemory50k), so 60,000 connections take about
	// 800 MiB, inside the DaemonSet's 1 GiB memory limit with room for
	// the garbage collector, and the 50,000 of the memory test fit.
	DefaultMaxConnsPerNode = 60000

	// refusalLogEvery is the least time between two refusal log lines of
	// one pod.
	refusalLogEvery = time.Second
)

// Refusal reasons, the reason label of the refused-connections metric.
const (
	reasonPodCap  = "pod_limit"
	reasonNodeCap = "node_limit"
)

// connCaps counts the proxied connections of a node against its caps. It
// is safe for concurrent use.
type connCaps struct {
	perPod, perNode int64
	node            atomic.Int64
	rec             *telemetry.Recorder
	now             func() time.Time
}

func newConnCaps(perPod, perNode int, rec *telemetry.Recorder) *connCaps {
	return &connCaps{perPod: int64(perPod), perNode: int64(perNode), rec: rec, now: time.Now}
}

// open returns how many connections the node holds.
func (c *connCaps) open() int64 { return c.node.Load() }

// podCaps counts one pod's connections, per direction. It is safe for
// concurrent use.
type podCaps struct {
	caps    *connCaps
	log     *slog.Logger
	out, in atomic.Int64
	lastLog atomic.Int64 // unix nanoseconds of the last refusal line
	refused atomic.Int64 // refusals not yet logged
}

// pod returns the counters of one pod; log carries the pod's attributes.
func (c *connCaps) pod(log *slog.Logger) *podCaps {
	return &podCaps{caps: c, log: log}
}

// slot is one admitted connection; release gives it back. Release is
// idempotent, so every close path may call it.
type slot struct {
	pod  *podCaps
	dir  *atomic.Int64
	done atomic.Bool
}

func (s *slot) release() {
	if s == nil || !s.done.CompareAndSwap(false, true) {
		return
	}
	s.dir.Add(-1)
	s.pod.caps.node.Add(-1)
}

// acquire admits one connection in direction ("outbound" or "inbound"),
// or refuses it: it then returns nil, having counted and (rate-limited)
// logged the refusal.
func (p *podCaps) acquire(direction string) *slot {
	dir := &p.in
	if direction == "outbound" {
		dir = &p.out
	}
	reason := ""
	if !below(dir, p.caps.perPod) {
		reason = reasonPodCap
	} else if !below(&p.caps.node, p.caps.perNode) {
		dir.Add(-1)
		reason = reasonNodeCap
	}
	if reason == "" {
		return &slot{pod: p, dir: dir}
	}
	p.refuse(direction, reason)
	return nil
}

// below increments n if it is below limit, and reports whether it did; n
// never exceeds limit, not even for a moment.
func below(n *atomic.Int64, limit int64) bool {
	for {
		v := n.Load()
		if v >= limit {
			return false
		}
		if n.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// refuse counts a refusal and logs it unless this pod logged one less than
// refusalLogEvery ago; the next line says how many were not logged.
func (p *podCaps) refuse(direction, reason string) {
	p.caps.rec.Refused(direction, reason)
	p.refused.Add(1)
	now := p.caps.now().UnixNano()
	last := p.lastLog.Load()
	if last != 0 && now-last < int64(refusalLogEvery) {
		return
	}
	if !p.lastLog.CompareAndSwap(last, now) {
		return // another refusal is logging this second
	}
	n := p.refused.Swap(0)
	limit := p.caps.perPod
	if reason == reasonNodeCap {
		limit = p.caps.perNode
	}
	p.log.Warn("refusing connections over the connection cap",
		"direction", direction, "reason", reason, "limit", limit, "refused", n,
		"pod_outbound", p.out.Load(), "pod_inbound", p.in.Load(), "node_open", p.caps.node.Load())
}

// counts returns the pod's open outbound and inbound connections.
func (p *podCaps) counts() (out, in int64) { return p.out.Load(), p.in.Load() }
