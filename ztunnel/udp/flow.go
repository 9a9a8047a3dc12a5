package udp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftmesh/weft/pkg/hbone3"
)

// Flow paths, the path label of the metrics.
const (
	pathTunnel      = "tunnel"
	pathPassthrough = "passthrough"
)

// upstream is where a flow's datagrams go: a CONNECT-UDP flow or a plain
// socket to a destination outside the mesh.
type upstream interface {
	send(b []byte) error
	recv(ctx context.Context, b []byte) ([]byte, error)
	close() error
}

// tunnelUp is a CONNECT-UDP flow.
type tunnelUp struct{ dc *hbone3.DatagramConn }

func (t tunnelUp) send(b []byte) error { return t.dc.WriteDatagram(b) }
func (t tunnelUp) recv(ctx context.Context, _ []byte) ([]byte, error) {
	return t.dc.ReadDatagram(ctx)
}
func (t tunnelUp) close() error { return t.dc.Close() }

// connUp is a connected UDP socket.
type connUp struct{ c net.Conn }

func (u connUp) send(b []byte) error { _, err := u.c.Write(b); return err }
func (u connUp) recv(_ context.Context, b []byte) ([]byte, error) {
	n, err := u.c.Read(b)
	return b[:n], err
}
func (u connUp) close() error { return u.c.Close() }

// flow is one UDP flow. Outbound: app writes to the application from the
// original destination (the pod's raw socket) and the listener hands the
// flow every datagram the application sends; inbound: app is a transparent
// socket bound to the client's address and connected to the application.
type flow struct {
	direction string
	src, dst  netip.AddrPort // as the application on the client side sent it
	opened    time.Time
	m         *Metrics

	ctx    context.Context
	cancel context.CancelFunc
	last   lastActive
	// authz is what an inbound flow was authorized on, to re-check it
	// when policies change; nil for outbound flows.
	authz *authzInput
	// bytesSent (towards the destination application) and bytesRecv.
	bytesSent, bytesRecv atomic.Int64

	mu      sync.Mutex
	app     appSide
	up      upstream
	path    string
	peer    string         // the other side's identity (tunnel flows)
	target  netip.AddrPort // tunnel target (endpoint address)
	pending [][]byte       // datagrams waiting for the upstream
	failed  string         // drop reason once setup failed
	failErr string         // why, for the flow dump
	failAt  time.Time      // when setup failed
	closed  bool
	done    chan struct{}
	onClose []func()
}

func newFlow(direction string, src, dst netip.AddrPort, m *Metrics) *flow {
	ctx, cancel := context.WithCancel(context.Background())
	f := &flow{direction: direction, src: src, dst: dst, opened: time.Now(), m: m, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	f.last.touch()
	return f
}

// lastActive is the time of a flow's last datagram, either way.
type lastActive struct {
	mu sync.Mutex
	t  time.Time
}

func (l *lastActive) touch() { l.mu.Lock(); l.t = time.Now(); l.mu.Unlock() }
func (l *lastActive) get() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.t
}

// fromApp forwards one datagram the application sent, queueing it while
// the upstream is being opened. When the flow's setup failed more than
// retry ago it does nothing and returns false: the caller opens the flow
// again (the cause may be gone, such as a DENY removed at the
// destination).
func (f *flow) fromApp(b []byte, retry time.Duration) bool {
	f.last.touch()
	f.mu.Lock()
	if f.failed != "" && time.Since(f.failAt) > retry {
		f.mu.Unlock()
		return false
	}
	switch {
	case f.closed:
		f.mu.Unlock()
		f.m.drop(f.direction, dropDraining)
		return true
	case f.failed != "":
		reason := f.failed
		f.mu.Unlock()
		f.m.drop(f.direction, reason)
		return true
	case f.up == nil:
		if len(f.pending) >= pendingDatagrams {
			f.mu.Unlock()
			f.m.drop(f.direction, dropQueueFull)
			return true
		}
		f.pending = append(f.pending, append([]byte(nil), b...))
		f.mu.Unlock()
		return true
	}
	up, path := f.up, f.path
	f.mu.Unlock()
	f.sendUp(up, path, b)
	return true
}

func (f *flow) sendUp(up upstream, path string, b []byte) {
	if err := up.send(b); err != nil {
		reason := dropWriteFailed
		if errors.Is(err, hbone3.ErrDatagramTooLarge) {
			reason = dropTooLarge
		}
		f.m.drop(f.direction, reason)
		return
	}
	f.countSent(path, len(b))
}

func (f *flow) countSent(path string, n int) {
	f.bytesSent.Add(int64(n))
	f.m.sent(f.direction, path, n)
}

func (f *flow) countReceived(path string, n int) {
	f.bytesRecv.Add(int64(n))
	f.m.received(f.direction, path, n)
}

// ready installs the upstream and sends what was queued.
func (f *flow) ready(up upstream, path, peer string, target netip.AddrPort) bool {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return false
	}
	f.up, f.path, f.peer, f.target = up, path, peer, target
	queued := f.pending
	f.pending = nil
	f.mu.Unlock()
	f.m.opened.WithLabelValues(f.direction, path).Inc()
	for _, b := range queued {
		f.sendUp(up, path, b)
	}
	return true
}

// fail records that the flow cannot be carried: its datagrams are dropped
// for reason until it expires.
func (f *flow) fail(reason string, err error) {
	f.mu.Lock()
	f.failed, f.failAt = reason, time.Now()
	if err != nil {
		f.failErr = err.Error()
	}
	n := len(f.pending)
	f.pending = nil
	f.mu.Unlock()
	for range n {
		f.m.drop(f.direction, reason)
	}
}

// hasFailed reports whether the flow's setup failed.
func (f *flow) hasFailed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed != ""
}

// appSide is where a flow writes to the application: a replyConn for
// outbound flows, a transparent socket for inbound ones.
type appSide interface {
	Write(b []byte) (int, error)
	Close() error
}

// setApp installs the application side.
func (f *flow) setApp(c appSide) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.app = c
	return true
}

// toApp writes one datagram from upstream to the application.
func (f *flow) toApp(b []byte) {
	f.last.touch()
	f.mu.Lock()
	app, path := f.app, f.path
	f.mu.Unlock()
	if app == nil {
		f.m.drop(f.direction, dropWriteFailed)
		return
	}
	if _, err := app.Write(b); err != nil {
		f.m.drop(f.direction, dropWriteFailed)
		return
	}
	f.countReceived(path, len(b))
}

// pumpUp carries upstream datagrams to the application until either side
// fails or the flow closes.
func (f *flow) pumpUp(up upstream) {
	buf := make([]byte, maxDatagram)
	for {
		b, err := up.recv(f.ctx, buf)
		if err != nil {
			f.close()
			return
		}
		f.toApp(b)
	}
}

// idleSince reports whether the flow has been idle since t.
func (f *flow) idleSince(t time.Time) bool { return f.last.get().Before(t) }

// Close ends the flow; it is idempotent.
func (f *flow) Close() error { f.close(); return nil }

func (f *flow) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	app, up, path, failed := f.app, f.up, f.path, f.failed
	hooks := f.onClose
	f.mu.Unlock()
	f.cancel()
	if app != nil {
		_ = app.Close()
	}
	if up != nil {
		_ = up.close()
	}
	if up != nil && failed == "" {
		f.m.closed.WithLabelValues(f.direction, path).Inc()
	}
	for _, h := range hooks {
		h()
	}
	close(f.done)
}

// FlowInfo is one flow in the config dump and `weftctl ztunnel-config
// connections`. Src and Dst are the flow's addresses as the client
// application sent it (inbound: the client pod's IP with port 0, and the
// target); Target is where the tunnel or passthrough goes; Peer is the
// other ztunnel's verified identity; bytes sent go towards the destination
// application.
type FlowInfo struct {
	// Workload is the pod's WDS uid (<cluster>//Pod/<ns>/<name>).
	Workload  string    `json:"workload"`
	Pod       string    `json:"pod"`
	Direction string    `json:"direction"`
	Src       string    `json:"src"`
	Dst       string    `json:"dst"`
	Target    string    `json:"target,omitempty"`
	Path      string    `json:"path,omitempty"`
	Peer      string    `json:"peerIdentity,omitempty"`
	Failed    string    `json:"failed,omitempty"`
	Error     string    `json:"error,omitempty"`
	BytesSent int64     `json:"bytesSent"`
	BytesRecv int64     `json:"bytesRecv"`
	Opened    time.Time `json:"opened"`
	LastSeen  time.Time `json:"lastSeen"`
}

func (f *flow) info(workload, pod string) FlowInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi := FlowInfo{Workload: workload, Pod: pod, Direction: f.direction, Src: f.src.String(), Dst: f.dst.String(), Path: f.path,
		Peer: f.peer, Failed: f.failed, Error: f.failErr, Opened: f.opened, LastSeen: f.last.get(),
		BytesSent: f.bytesSent.Load(), BytesRecv: f.bytesRecv.Load()}
	if f.target.IsValid() {
		fi.Target = f.target.String()
	}
	return fi
}
