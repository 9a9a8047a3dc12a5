package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/zds"
)

// ErrNoZtunnel means no ztunnel is connected to the ZDS socket.
var ErrNoZtunnel = errors.New("no ztunnel connected to the zds socket")

// workload is what ztunnel needs to serve a pod.
type workload struct {
	UID            string
	Name           string
	Namespace      string
	ServiceAccount string
	NetNS          *netns.NetNS
}

func (w workload) addRequest() *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{
		Uid: w.UID,
		WorkloadInfo: &zdsapi.WorkloadInfo{
			Name: w.Name, Namespace: w.Namespace, ServiceAccount: w.ServiceAccount,
		},
	}}}
}

// ztunnel is how the agent talks to the node's ztunnel(s).
type ztunnel interface {
	// Add hands the pod to the newest ztunnel and waits for its ack,
	// waiting for a ztunnel to connect until ctx is done (ErrNoZtunnel).
	Add(ctx context.Context, w workload) error
	// Del tells every connected ztunnel to drop the pod.
	Del(ctx context.Context, uid string)
	// Connected is the number of connected ztunnels.
	Connected() int
}

var _ ztunnel = (*zdsServer)(nil)

// zdsServer serves ZDS on a unix socket. Each new ztunnel connection gets
// a snapshot of every pod the agent holds, then becomes the one new pods go
// to; deletes go to every connection.
type zdsServer struct {
	path     string
	log      *slog.Logger
	snapshot func() []workload
	acked    func(w workload) // a snapshot's ack of w
	metrics  *metrics

	// addMu serialises adds and snapshots, so that a pod added while a new
	// connection takes its snapshot lands in one or the other.
	addMu sync.Mutex

	mu      sync.Mutex
	conns   []*ztConn // newest last
	changed chan struct{}
	nextID  int
}

type ztConn struct {
	id    int
	c     *zds.Conn
	reqMu sync.Mutex // one request/ack exchange at a time
}

func (z *ztConn) request(ctx context.Context, req *zdsapi.WorkloadRequest, w *workload) error {
	z.reqMu.Lock()
	defer z.reqMu.Unlock()
	if w != nil {
		f := w.NetNS.File()
		if f == nil {
			return fmt.Errorf("pod %s: netns handle closed", w.UID)
		}
		return z.c.Request(ctx, req, f)
	}
	return z.c.Request(ctx, req, nil)
}

func newZDSServer(path string, log *slog.Logger, m *metrics, snapshot func() []workload, acked func(w workload)) *zdsServer {
	return &zdsServer{path: path, log: log, metrics: m, snapshot: snapshot, acked: acked, changed: make(chan struct{})}
}

// Run listens and serves until ctx is done, then closes every connection
// and waits for its goroutines.
func (s *zdsServer) Run(ctx context.Context, listening func()) error {
	l, err := zds.Listen(s.path)
	if err != nil {
		return err
	}
	defer func() { _ = l.Close() }()
	if listening != nil {
		listening()
	}
	s.log.Info("zds server listening", "path", s.path)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				s.closeAll()
				return nil
			}
			s.log.Error("accept ztunnel connection", "err", err)
			select {
			case <-ctx.Done():
				s.closeAll()
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, c)
		}()
	}
}

func (s *zdsServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.c.Close()
	}
}

// serve runs one connection: hello, snapshot, then liveness watching.
func (s *zdsServer) serve(ctx context.Context, c *zds.Conn) {
	defer func() { _ = c.Close() }()
	s.mu.Lock()
	s.nextID++
	zc := &ztConn{id: s.nextID, c: c}
	s.mu.Unlock()
	log := s.log.With("conn_id", zc.id)

	h, err := c.RecvHello(ctx)
	if err != nil {
		log.Warn("ztunnel hello failed", "err", err)
		return
	}
	log.Info("ztunnel connected", "version", h.GetVersion().String())
	if err := s.sendSnapshot(ctx, zc, log); err != nil {
		log.Warn("zds snapshot failed; dropping connection", "err", err)
		return
	}

	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.remove(zc)
			return
		case <-t.C:
			if c.PeerClosed() {
				log.Info("ztunnel disconnected")
				s.remove(zc)
				return
			}
		}
	}
}

// sendSnapshot replays every held pod, ends with snapshot_sent, and then
// registers the connection as the newest, all under addMu.
func (s *zdsServer) sendSnapshot(ctx context.Context, zc *ztConn, log *slog.Logger) error {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	pods := s.snapshot()
	var ackedPods []workload
	for _, w := range pods {
		if err := zc.request(ctx, w.addRequest(), &w); err != nil {
			var ackErr *zds.AckError
			if errors.As(err, &ackErr) {
				log.Warn("ztunnel rejected pod in snapshot", "pod", w.Namespace+"/"+w.Name, "uid", w.UID, "err", err)
				s.metrics.failure("ztunnel_rejected")
				continue
			}
			return fmt.Errorf("snapshot add %s: %w", w.UID, err)
		}
		ackedPods = append(ackedPods, w)
	}
	snap := &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}}
	if err := zc.request(ctx, snap, nil); err != nil {
		return fmt.Errorf("snapshot_sent: %w", err)
	}
	log.Info("zds snapshot sent", "pods", len(pods))
	// Record the acks before the connection counts as connected, so that
	// nobody re-adds these pods to it.
	for _, w := range ackedPods {
		s.acked(w)
	}
	s.mu.Lock()
	s.conns = append(s.conns, zc)
	close(s.changed)
	s.changed = make(chan struct{})
	n := len(s.conns)
	s.mu.Unlock()
	s.metrics.ztunnels.Set(float64(n))
	return nil
}

func (s *zdsServer) remove(zc *ztConn) {
	s.mu.Lock()
	for i, c := range s.conns {
		if c == zc {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	n := len(s.conns)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.metrics.ztunnels.Set(float64(n))
}

// newest returns the newest connection, or nil and a channel closed on the
// next change.
func (s *zdsServer) newest() (*ztConn, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) == 0 {
		return nil, s.changed
	}
	return s.conns[len(s.conns)-1], nil
}

// Connected implements ztunnel.
func (s *zdsServer) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Add implements ztunnel.
func (s *zdsServer) Add(ctx context.Context, w workload) error {
	for {
		zc, changed := s.newest()
		if zc == nil {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (waited %s)", ErrNoZtunnel, "until the request deadline")
			case <-changed:
				continue
			}
		}
		s.addMu.Lock()
		// A snapshot may have registered a newer connection meanwhile.
		if cur, _ := s.newest(); cur != zc {
			s.addMu.Unlock()
			continue
		}
		err := zc.request(ctx, w.addRequest(), &w)
		s.addMu.Unlock()
		if err != nil {
			var ackErr *zds.AckError
			if !errors.As(err, &ackErr) {
				// The connection is broken; let the liveness check or the
				// next snapshot sort it out.
				_ = zc.c.Close()
			}
			return fmt.Errorf("zds add %s: %w", w.UID, err)
		}
		return nil
	}
}

// Del implements ztunnel: every connection is told; failures are logged.
func (s *zdsServer) Del(ctx context.Context, uid string) {
	s.mu.Lock()
	conns := append([]*ztConn(nil), s.conns...)
	s.mu.Unlock()
	req := &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: uid}}}
	for _, zc := range conns {
		if err := zc.request(ctx, req, nil); err != nil {
			s.log.Warn("zds del failed", "conn_id", zc.id, "uid", uid, "err", err)
		}
	}
}
