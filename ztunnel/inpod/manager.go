package inpod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/netns"
)

// Handler serves enrolled pods; the proxy implements it.
type Handler interface {
	// ServePod serves pod's listeners. It must return once the listeners
	// are closed (accept fails) and the pod's context is done or its
	// connections are finished.
	ServePod(pod *Pod)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(pod *Pod)

// ServePod calls f.
func (f HandlerFunc) ServePod(pod *Pod) { f(pod) }

var _ Handler = HandlerFunc(nil)

// DefaultDrainTimeout bounds how long a removed pod's connections may run.
const DefaultDrainTimeout = 30 * time.Second

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	Handler Handler
	// DrainTimeout bounds a removed pod's drain; zero means
	// DefaultDrainTimeout.
	DrainTimeout time.Duration
	// QUIC also opens each pod's UDP InboundHBONEPort socket
	// (Listeners.InboundQUIC) for HBONE over QUIC.
	QUIC bool
	Log  *slog.Logger
	// newSockets, when set (tests), replaces the netns socket factory.
	newSockets func(*netns.NetNS) socketFactory
}

// Manager owns the enrolled pods. It is safe for concurrent use.
type Manager struct {
	cfg ManagerConfig
	log *slog.Logger

	mu       sync.Mutex
	pods     map[string]*Pod
	seen     map[string]bool // uids added or kept in the current snapshot
	inSnap   bool
	snapDone chan struct{}
	snapOnce sync.Once
	closed   bool
	wg       sync.WaitGroup
}

// NewManager returns a Manager with no pods.
func NewManager(cfg ManagerConfig) *Manager {
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.newSockets == nil {
		cfg.newSockets = func(ns *netns.NetNS) socketFactory { return newNetnsSockets(ns) }
	}
	return &Manager{cfg: cfg, log: cfg.Log, pods: map[string]*Pod{}, seen: map[string]bool{}, snapDone: make(chan struct{})}
}

// SnapshotDone is closed after the first complete ZDS snapshot.
func (m *Manager) SnapshotDone() <-chan struct{} { return m.snapDone }

// Pod returns the pod with uid, or nil.
func (m *Manager) Pod(uid string) *Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pods[uid]
}

// States returns every pod's state, sorted by uid, for the admin dump.
func (m *Manager) States() []State {
	m.mu.Lock()
	pods := make([]*Pod, 0, len(m.pods))
	for _, p := range m.pods {
		pods = append(pods, p)
	}
	m.mu.Unlock()
	out := make([]State, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.state())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out
}

// beginSnapshot starts a new ZDS session: the following adds and keeps make
// up the snapshot.
func (m *Manager) beginSnapshot() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inSnap = true
	m.seen = map[string]bool{}
}

// Add enrolls a pod whose netns file came over ZDS. The manager owns ns
// from here on, also on error. Adding a uid that is already enrolled keeps
// the existing pod (the agent replays its snapshot after a reconnect).
func (m *Manager) Add(ctx context.Context, uid string, info *zdsapi.WorkloadInfo, nsFile *os.File) error {
	if uid == "" {
		closeFile(nsFile)
		return errors.New("add workload: empty uid")
	}
	if nsFile == nil {
		return fmt.Errorf("add workload %s: no netns file descriptor", uid)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		closeFile(nsFile)
		return errors.New("add workload: shutting down")
	}
	if m.inSnap {
		m.seen[uid] = true
	}
	if _, ok := m.pods[uid]; ok {
		m.mu.Unlock()
		closeFile(nsFile)
		return nil
	}
	m.mu.Unlock()

	ns, err := netns.FromFile(nsFile)
	if err != nil {
		closeFile(nsFile)
		return fmt.Errorf("add workload %s: %w", uid, err)
	}
	pod := newPod(uid, info, ns, m.cfg.newSockets(ns))
	if err := pod.sockets.MigrateRequests(); err != nil {
		m.log.Debug("cannot enable tcp_migrate_req in pod netns; a drain may reset queued connections", "uid", uid, "error", err)
	}
	if err := pod.openListeners(ctx, m.cfg.QUIC); err != nil {
		pod.Listeners.Close()
		pod.release()
		return fmt.Errorf("add workload %s: %w", uid, err)
	}
	m.mu.Lock()
	if _, ok := m.pods[uid]; ok || m.closed {
		// Lost a race with a concurrent add or shutdown.
		m.mu.Unlock()
		pod.Listeners.Close()
		pod.release()
		return nil
	}
	m.pods[uid] = pod
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer close(pod.served)
		m.cfg.Handler.ServePod(pod)
	}()
	m.log.Info("pod added", "uid", uid, "pod", info.GetName(), "namespace", info.GetNamespace())
	return nil
}

func closeFile(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}

// openListeners opens the pod's three listeners (and, with quic, the UDP
// HBONE socket), each one dual-stack socket on [::] so that IPv4 and IPv6
// traffic of a dual-stack pod are both captured (IPv4 only where the netns
// has no IPv6).
func (p *Pod) openListeners(ctx context.Context, quic bool) error {
	var err error
	wild := netip.IPv6Unspecified()
	if p.Listeners.Outbound, err = p.sockets.Listen(ctx, netip.AddrPortFrom(wild, OutboundPort)); err != nil {
		return err
	}
	if p.Listeners.InboundPlain, err = p.sockets.Listen(ctx, netip.AddrPortFrom(wild, InboundPlainPort)); err != nil {
		return err
	}
	if p.Listeners.InboundHBONE, err = p.sockets.Listen(ctx, netip.AddrPortFrom(wild, InboundHBONEPort)); err != nil {
		return err
	}
	if quic {
		if p.Listeners.InboundQUIC, err = p.sockets.ListenPacket(ctx, netip.AddrPortFrom(wild, InboundHBONEPort)); err != nil {
			return err
		}
	}
	return nil
}

// Keep marks uid as part of the current snapshot.
func (m *Manager) Keep(uid string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.inSnap {
		return fmt.Errorf("keep workload %s: only valid before snapshot_sent", uid)
	}
	if _, ok := m.pods[uid]; !ok {
		return fmt.Errorf("keep workload %s: not known", uid)
	}
	m.seen[uid] = true
	return nil
}

// Del removes a pod and drains it in the background. Deleting an unknown
// uid succeeds.
func (m *Manager) Del(uid string) {
	m.mu.Lock()
	pod := m.pods[uid]
	delete(m.pods, uid)
	delete(m.seen, uid)
	m.mu.Unlock()
	if pod != nil {
		m.startDrain(pod)
	}
}

// snapshotSent ends the snapshot: pods neither added nor kept in it are
// removed.
func (m *Manager) snapshotSent() {
	m.mu.Lock()
	var stale []*Pod
	for uid, p := range m.pods {
		if !m.seen[uid] {
			stale = append(stale, p)
			delete(m.pods, uid)
		}
	}
	m.inSnap = false
	m.mu.Unlock()
	for _, p := range stale {
		m.log.Info("pod not in snapshot, removing", "uid", p.UID)
		m.startDrain(p)
	}
	m.snapOnce.Do(func() { close(m.snapDone) })
}

func (m *Manager) startDrain(p *Pod) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), m.cfg.DrainTimeout)
		defer cancel()
		m.log.Info("pod draining", "uid", p.UID, "connections", p.Connections())
		p.shutdown(ctx)
		m.log.Info("pod removed", "uid", p.UID)
	}()
}

// Close drains every pod, waiting for their connections until ctx ends,
// then for the handlers to return. New adds are refused. It is idempotent.
func (m *Manager) Close(ctx context.Context) {
	m.mu.Lock()
	m.closed = true
	pods := m.pods
	m.pods = map[string]*Pod{}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.shutdown(ctx)
		}()
	}
	wg.Wait()
	m.wg.Wait()
}
