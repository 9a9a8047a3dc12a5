package udp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
)

// Service carries enrolled pods' UDP flows. It is safe for concurrent use.
type Service struct {
	cfg Config

	mu   sync.Mutex
	pods map[*inpod.Pod]*podFlows
}

// New validates cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, pods: map[*inpod.Pod]*podFlows{}}, nil
}

// flowKey is an outbound flow's 5-tuple (the protocol is always UDP).
type flowKey struct{ src, dst netip.AddrPort }

// podFlows are one pod's flows.
type podFlows struct {
	pod     *inpod.Pod
	sockets sockets
	// raw answers the application from original destinations; nil when
	// it could not be opened (outbound flows then fail).
	raw rawWriter

	mu       sync.Mutex
	outbound map[flowKey]*flow
	all      map[*flow]struct{}
}

// podFlows returns pod's flow table, creating it.
func (s *Service) podFlows(pod *inpod.Pod) *podFlows {
	s.mu.Lock()
	defer s.mu.Unlock()
	pf := s.pods[pod]
	if pf == nil {
		pf = &podFlows{pod: pod, sockets: netnsSockets{pod.NetNS()}, outbound: map[flowKey]*flow{}, all: map[*flow]struct{}{}}
		s.pods[pod] = pf
	}
	return pf
}

// add registers f unless the pod is at its cap or draining; f is removed
// from the table when it closes.
func (s *Service) add(pf *podFlows, f *flow, key *flowKey) (ok bool, reason string) {
	untrack, tracked := pf.pod.Track(f)
	if !tracked {
		return false, dropDraining
	}
	pf.mu.Lock()
	if len(pf.all) >= s.cfg.MaxFlowsPerPod {
		pf.mu.Unlock()
		untrack()
		return false, dropFlowLimit
	}
	pf.all[f] = struct{}{}
	if key != nil {
		pf.outbound[*key] = f
	}
	pf.mu.Unlock()
	f.onClose = append(f.onClose, func() {
		pf.mu.Lock()
		delete(pf.all, f)
		if key != nil && pf.outbound[*key] == f {
			delete(pf.outbound, *key)
		}
		pf.mu.Unlock()
		untrack()
	})
	return true, ""
}

// Wrap returns an inpod.Handler that serves each pod's UDP listener beside
// h, which serves everything else.
func (s *Service) Wrap(h inpod.Handler) inpod.Handler {
	return inpod.HandlerFunc(func(pod *inpod.Pod) {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ServePod(pod, stop)
		}()
		h.ServePod(pod)
		close(stop)
		<-done
	})
}

// ServePod serves pod's UDP listener until the pod drains or stop is
// closed, then closes every flow of the pod and returns.
func (s *Service) ServePod(pod *inpod.Pod, stop <-chan struct{}) {
	pf := s.podFlows(pod)
	defer func() {
		s.mu.Lock()
		delete(s.pods, pod)
		s.mu.Unlock()
	}()
	log := s.cfg.Log.With("pod", pod.Namespace+"/"+pod.Name)
	raw, err := pf.sockets.Raw()
	if err != nil {
		log.Warn("no raw socket in pod; its captured udp is dropped", "error", err)
	} else {
		pf.mu.Lock()
		pf.raw = raw
		pf.mu.Unlock()
		defer func() { _ = raw.Close() }()
	}
	ln, err := pf.sockets.Listen(pod.Context())
	if err != nil {
		log.Warn("no udp listener in pod; its captured udp is dropped", "error", err)
	} else {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.readLoop(pf, ln)
		}()
		defer wg.Wait()
		defer func() { _ = ln.Close() }()
	}
	tick := time.NewTicker(max(s.cfg.IdleTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	defer pf.closeAll()
	for {
		changed := s.cfg.Store.Changed()
		select {
		case <-stop:
			return
		case <-pod.Draining():
			return
		case <-tick.C:
			pf.expire(time.Now().Add(-s.cfg.IdleTimeout))
		case <-changed:
			s.recheck(pf)
		}
	}
}

// recheck closes the pod's inbound flows that its policies, as they now
// are, refuse: as for TCP, a new DENY ends open flows too. It also forgets
// the outbound flows that could not be opened, so that their next datagram
// tries again under the new state (a DENY removed, an endpoint added).
func (s *Service) recheck(pf *podFlows) {
	for _, f := range pf.snapshot() {
		in := f.authz
		if in == nil {
			if f.hasFailed() {
				f.close()
			}
			continue
		}
		w := s.cfg.Store.WorkloadByIP(wds.NetAddr{Network: s.cfg.Network, IP: in.target.Addr()})
		err := errors.New("destination workload is gone")
		if w != nil {
			err = s.authorize(w, in.src, in.target, in.peer)
		}
		if err != nil {
			s.cfg.Log.Info("closing udp flow refused by current policy", "pod", pf.pod.Namespace+"/"+pf.pod.Name,
				"peer", in.peer.String(), "target", in.target.String(), "error", err)
			s.cfg.Metrics.drop(directionInbound, dropDenied)
			f.close()
		}
	}
}

func (pf *podFlows) snapshot() []*flow {
	pf.mu.Lock()
	defer pf.mu.Unlock()
	out := make([]*flow, 0, len(pf.all))
	for f := range pf.all {
		out = append(out, f)
	}
	return out
}

func (pf *podFlows) expire(before time.Time) {
	for _, f := range pf.snapshot() {
		if f.idleSince(before) {
			f.close()
		}
	}
}

func (pf *podFlows) closeAll() {
	for _, f := range pf.snapshot() {
		f.close()
	}
}

// datagramBufs holds the buffers captured datagrams are read into, each
// borrowed only while a datagram is handled (outbound copies what it
// keeps).
var datagramBufs = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// readLoop reads captured datagrams until the listener closes.
func (s *Service) readLoop(pf *podFlows, ln packetListener) {
	for {
		bp, n, src, dst, err := ln.ReadFrom(&datagramBufs)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.cfg.Log.Debug("udp listener read", "error", err)
			continue
		}
		s.outbound(pf, src, dst, (*bp)[:n])
		datagramBufs.Put(bp)
	}
}

// Flows lists every pod's flows, for the config dump.
func (s *Service) Flows() []FlowInfo {
	s.mu.Lock()
	pfs := make([]*podFlows, 0, len(s.pods))
	for _, pf := range s.pods {
		pfs = append(pfs, pf)
	}
	s.mu.Unlock()
	out := []FlowInfo{}
	for _, pf := range pfs {
		name := pf.pod.Namespace + "/" + pf.pod.Name
		uid := s.cfg.ClusterID + "//Pod/" + name
		for _, f := range pf.snapshot() {
			out = append(out, f.info(uid, name))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Pod != out[j].Pod {
			return out[i].Pod < out[j].Pod
		}
		return out[i].Opened.Before(out[j].Opened)
	})
	return out
}

// connectCtx bounds opening an upstream by ConnectTimeout and the flow.
func (s *Service) connectCtx(f *flow) (context.Context, context.CancelFunc) {
	return context.WithTimeout(f.ctx, s.cfg.ConnectTimeout)
}
