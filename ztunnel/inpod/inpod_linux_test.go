//go:build linux

package inpod

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/zds"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
}

// podNS creates a throwaway netns with loopback up.
func podNS(t *testing.T) *netns.NetNS {
	t.Helper()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	if err := ns.LoopbackUp(); err != nil {
		t.Fatal(err)
	}
	return ns
}

// echoHandler accepts on the outbound listener and echoes, tracking each
// connection on the pod.
type echoHandler struct {
	mu   sync.Mutex
	pods map[string]*Pod
	done map[string]chan struct{}
}

func (h *echoHandler) ServePod(p *Pod) {
	h.mu.Lock()
	h.pods[p.UID] = p
	done := make(chan struct{})
	h.done[p.UID] = done
	h.mu.Unlock()
	defer close(done)
	var wg sync.WaitGroup
	for {
		c, err := p.Listeners.Outbound.Accept()
		if err != nil {
			break
		}
		untrack, ok := p.Track(c)
		if !ok {
			_ = c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer untrack()
			defer func() { _ = c.Close() }()
			_, _ = io.Copy(c, c)
		}()
	}
	wg.Wait()
}

func addReq(uid, name string) *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{
		Uid: uid, WorkloadInfo: &zdsapi.WorkloadInfo{Name: name, Namespace: "demo", ServiceAccount: "sa-" + name}}}}
}

func keepReq(uid string) *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Keep{Keep: &zdsapi.KeepWorkload{Uid: uid}}}
}

func delReq(uid string) *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: uid}}}
}

func snapReq() *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}}
}

// agent is a fake node agent on the ZDS socket.
type agent struct {
	t    *testing.T
	ln   *zds.Listener
	conn *zds.Conn
}

func (a *agent) accept(ctx context.Context) {
	a.t.Helper()
	c, err := a.ln.Accept(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := c.RecvHello(ctx); err != nil {
		a.t.Fatal(err)
	}
	a.conn = c
}

// send sends req and returns the ack's error string.
func (a *agent) send(ctx context.Context, req *zdsapi.WorkloadRequest, ns *netns.NetNS) string {
	a.t.Helper()
	var f *os.File
	if ns != nil {
		f = ns.File()
	}
	if err := a.conn.SendRequest(ctx, req, f); err != nil {
		a.t.Fatal(err)
	}
	resp, err := a.conn.RecvResponse(ctx)
	if err != nil {
		a.t.Fatal(err)
	}
	return resp.GetAck().GetError()
}

func dialIn(t *testing.T, ns *netns.NetNS, port uint16) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return ns.Dial(ctx, nil, "tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String())
}

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q %v", b, err)
	}
}

func TestZDSLifecycle(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nsA, nsB := podNS(t), podNS(t)

	ln, err := zds.Listen(filepath.Join(t.TempDir(), "ztunnel.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	h := &echoHandler{pods: map[string]*Pod{}, done: map[string]chan struct{}{}}
	m := NewManager(ManagerConfig{Handler: h, DrainTimeout: 300 * time.Millisecond})
	client := NewClient(ClientConfig{Path: ln.Path(), Manager: m, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = client.Run(runCtx) }()
	defer func() { stop(); <-runDone; m.Close(ctx) }()

	ag := &agent{t: t, ln: ln}
	ag.accept(ctx)
	if e := ag.send(ctx, addReq("uid-a", "a"), nsA); e != "" {
		t.Fatalf("add a: %s", e)
	}
	if e := ag.send(ctx, addReq("uid-b", "b"), nsB); e != "" {
		t.Fatalf("add b: %s", e)
	}
	if e := ag.send(ctx, keepReq("uid-x"), nil); e == "" {
		t.Fatal("keep of unknown uid acked without error")
	}
	select {
	case <-m.SnapshotDone():
		t.Fatal("snapshot done before snapshot_sent")
	default:
	}
	if e := ag.send(ctx, snapReq(), nil); e != "" {
		t.Fatalf("snapshot_sent: %s", e)
	}
	<-m.SnapshotDone()

	// Listeners are inside each pod's netns, marked, and served.
	for _, ns := range []*netns.NetNS{nsA, nsB} {
		for _, port := range []uint16{OutboundPort, InboundPlainPort, InboundHBONEPort} {
			c, err := dialIn(t, ns, port)
			if err != nil {
				t.Fatalf("port %d not listening in pod netns: %v", port, err)
			}
			_ = c.Close()
		}
	}
	if _, err := net.Dial("tcp4", "127.0.0.1:15001"); err == nil {
		t.Log("note: something listens on 15001 in the host netns")
	}
	podA := m.Pod("uid-a")
	if podA == nil || podA.Name != "a" || podA.ServiceAccount != "sa-a" {
		t.Fatalf("pod a = %+v", podA)
	}
	for _, l := range []net.Listener{podA.Listeners.Outbound, podA.Listeners.InboundPlain, podA.Listeners.InboundHBONE} {
		if mark, err := SocketMark(l.(syscall.Conn)); err != nil || mark != Mark {
			t.Errorf("listener %s mark = %#x, %v; want %#x", l.Addr(), mark, err, Mark)
		}
	}
	// Outgoing connections made for the pod are created in its netns and marked.
	c, err := podA.Dial(ctx, netip.MustParseAddrPort("127.0.0.1:15001"))
	if err != nil {
		t.Fatal(err)
	}
	if mark, err := SocketMark(c.(syscall.Conn)); err != nil || mark != Mark {
		t.Errorf("dialled conn mark = %#x, %v", mark, err)
	}
	roundTrip(t, c)
	_ = c.Close()

	// Session lost: pods survive; the replayed snapshot keeps a (same Pod)
	// and drops b.
	held, err := dialIn(t, nsB, OutboundPort)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, held)
	_ = ag.conn.Close()
	ag.accept(ctx)
	if e := ag.send(ctx, addReq("uid-a", "a"), nsA); e != "" {
		t.Fatalf("re-add a: %s", e)
	}
	if e := ag.send(ctx, snapReq(), nil); e != "" {
		t.Fatal(e)
	}
	if m.Pod("uid-a") != podA {
		t.Error("re-added pod was replaced")
	}
	if m.Pod("uid-b") != nil {
		t.Error("pod b survived a snapshot without it")
	}
	h.mu.Lock()
	doneB := h.done["uid-b"]
	h.mu.Unlock()
	select {
	case <-doneB:
	case <-time.After(5 * time.Second):
		t.Fatal("pod b's handler did not return after drain")
	}
	// The drain deadline closed b's held connection.
	_ = held.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil {
		t.Error("held connection still open after drain")
	}
	_ = held.Close()
	if c, err := dialIn(t, nsB, OutboundPort); err == nil {
		_ = c.Close()
		t.Error("pod b still listening")
	}

	// Keep after snapshot_sent is an error; del removes a.
	if e := ag.send(ctx, keepReq("uid-a"), nil); e == "" {
		t.Error("keep after snapshot_sent acked without error")
	}
	if e := ag.send(ctx, delReq("uid-a"), nil); e != "" {
		t.Fatal(e)
	}
	if e := ag.send(ctx, delReq("uid-a"), nil); e != "" {
		t.Fatalf("second del not idempotent: %s", e)
	}
	if m.Pod("uid-a") != nil {
		t.Error("pod a still present")
	}
	if states := m.States(); len(states) != 0 {
		t.Errorf("states = %+v", states)
	}
}

// TestDrainWaitsForConnections checks that a removed pod's connection may
// finish within the drain timeout.
func TestDrainWaitsForConnections(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	ns := podNS(t)
	h := &echoHandler{pods: map[string]*Pod{}, done: map[string]chan struct{}{}}
	m := NewManager(ManagerConfig{Handler: h, DrainTimeout: 5 * time.Second})
	defer m.Close(ctx)
	dup, err := netns.Open(ns.Path())
	if err != nil {
		// anonymous namespaces have no path; duplicate through /proc.
		dup, err = netns.Open("/proc/self/fd/" + strconv.Itoa(ns.Fd()))
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Add(ctx, "uid", &zdsapi.WorkloadInfo{Name: "p"}, dup.File()); err != nil {
		t.Fatal(err)
	}
	c, err := dialIn(t, ns, OutboundPort)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c)
	if st := m.States(); len(st) != 1 || st[0].Connections != 1 || st[0].State != "up" {
		t.Fatalf("states = %+v", st)
	}
	pod := m.Pod("uid")
	m.Del("uid")
	<-pod.Draining()
	// New connections are refused, the existing one still works.
	if c2, err := dialIn(t, ns, OutboundPort); err == nil {
		_ = c2.Close()
		t.Error("new connection accepted while draining")
	}
	roundTrip(t, c)
	_ = c.Close()
	select {
	case <-pod.Context().Done():
	case <-time.After(3 * time.Second):
		t.Fatal("drain did not finish when the last connection closed")
	}
}

// TestReplacementTakesOver checks the SO_REUSEPORT hand-over: a second
// ztunnel binds the same pod's listeners beside the first, and when the
// first drains the second keeps accepting while the first's open
// connection finishes.
func TestReplacementTakesOver(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	ns := podNS(t)
	add := func(m *Manager) {
		t.Helper()
		f, err := os.Open("/proc/self/fd/" + strconv.Itoa(ns.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Add(ctx, "uid", &zdsapi.WorkloadInfo{Name: "p"}, f); err != nil {
			t.Fatal(err)
		}
	}
	oldH := &echoHandler{pods: map[string]*Pod{}, done: map[string]chan struct{}{}}
	old := NewManager(ManagerConfig{Handler: oldH, DrainTimeout: 5 * time.Second})
	add(old)
	held, err := dialIn(t, ns, OutboundPort)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	roundTrip(t, held)

	newH := &echoHandler{pods: map[string]*Pod{}, done: map[string]chan struct{}{}}
	replacement := NewManager(ManagerConfig{Handler: newH, DrainTimeout: 5 * time.Second})
	defer replacement.Close(ctx)
	add(replacement)

	oldPod := old.Pod("uid")
	closed := make(chan struct{})
	go func() { defer close(closed); old.Close(ctx) }()
	<-oldPod.Draining()
	for range 5 {
		c, err := dialIn(t, ns, OutboundPort)
		if err != nil {
			t.Fatalf("replacement not accepting: %v", err)
		}
		roundTrip(t, c)
		_ = c.Close()
	}
	roundTrip(t, held)
	_ = held.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("old ztunnel did not finish draining")
	}
}

func isRoot() bool { return os.Geteuid() == 0 }

func newBenchNS() (*netns.NetNS, error) {
	ns, err := netns.New()
	if err != nil {
		return nil, err
	}
	if err := ns.LoopbackUp(); err != nil {
		_ = ns.Close()
		return nil, err
	}
	return ns, nil
}

// TestQUICSocket checks that a manager with QUIC on opens a marked UDP
// socket on 15008 in the pod's netns, leaves it out of Listeners.Close,
// and closes it when the pod is released.
func TestQUICSocket(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	ns := podNS(t)
	h := &echoHandler{pods: map[string]*Pod{}, done: map[string]chan struct{}{}}
	m := NewManager(ManagerConfig{Handler: h, DrainTimeout: time.Second, QUIC: true})
	defer m.Close(ctx)
	dup, err := netns.Open("/proc/self/fd/" + strconv.Itoa(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add(ctx, "uid", &zdsapi.WorkloadInfo{Name: "p"}, dup.File()); err != nil {
		t.Fatal(err)
	}
	pod := m.Pod("uid")
	if FromContext(pod.Context()) != pod {
		t.Error("FromContext(pod.Context()) is not the pod")
	}
	pc := pod.Listeners.InboundQUIC
	if pc == nil {
		t.Fatal("no QUIC socket")
	}
	if ap := pc.LocalAddr().(*net.UDPAddr).AddrPort(); ap.Port() != InboundHBONEPort {
		t.Errorf("QUIC socket on %s, want port %d", ap, InboundHBONEPort)
	}
	if mark, err := SocketMark(pc.(syscall.Conn)); err != nil || mark != Mark {
		t.Errorf("QUIC socket mark = %#x, %v; want %#x", mark, err, Mark)
	}
	// A datagram sent inside the netns arrives.
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 16)
		n, _, err := pc.ReadFrom(b)
		if err == nil {
			got <- string(b[:n])
		}
	}()
	c, err := ns.Dial(ctx, nil, "udp4", "127.0.0.1:15008")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != "hi" {
			t.Errorf("read %q", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("datagram not received")
	}
	// The outgoing socket of a QUIC dial is marked too.
	out, err := pod.ListenPacket(ctx, netip.MustParseAddr("10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if mark, err := SocketMark(out.(syscall.Conn)); err != nil || mark != Mark {
		t.Errorf("outgoing UDP socket mark = %#x, %v; want %#x", mark, err, Mark)
	}
	// Closing the TCP listeners leaves the QUIC socket to its server.
	(&Listeners{InboundQUIC: out}).Close()
	if _, err := out.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
		t.Errorf("Listeners.Close closed the QUIC socket: %v", err)
	}
	_ = out.Close()

	m.Del("uid")
	h.mu.Lock()
	done := h.done["uid"]
	h.mu.Unlock()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("pod not served to the end")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := pc.WriteTo([]byte("x"), c.LocalAddr()); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("QUIC socket still open after release")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
