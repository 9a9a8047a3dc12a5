package kube

import (
	"context"
	"sync"
	"time"

	"k8s.io/client-go/tools/cache"
)

// syncOrder delivers the initial state in dependency order: pod events wait
// until the kinds a pod's workload depends on (namespaces, services,
// endpoint slices, policies, gateways) have been handed to the sink. The
// informers still list and decode in parallel; only the hand-over waits.
// With the services already known, each pod's workload is built once,
// instead of once when the pod arrives and again for every service or
// namespace that selects it later.
type syncOrder struct {
	open     chan struct{}
	openOnce sync.Once
	prereqs  []named
	gated    []named
}

// named is a handler registration's sync state with the kind it watches.
type named struct {
	kind string
	done cache.DoneChecker
}

func newSyncOrder() *syncOrder { return &syncOrder{open: make(chan struct{})} }

// prereq records a registration whose initial state must be delivered
// before gated handlers see anything.
func (o *syncOrder) prereq(kind string, reg cache.ResourceEventHandlerRegistration) {
	o.prereqs = append(o.prereqs, named{kind, reg.HasSyncedChecker()})
}

// gate wraps h so that its callbacks wait for the prerequisites.
func (o *syncOrder) gate(h cache.ResourceEventHandler) cache.ResourceEventHandler {
	return gatedHandler{open: o.open, h: h}
}

// gatedReg records a gated registration, for the sync log.
func (o *syncOrder) gatedReg(kind string, reg cache.ResourceEventHandlerRegistration) {
	o.gated = append(o.gated, named{kind, reg.HasSyncedChecker()})
}

// run opens the gate once every prerequisite has synced, or when ctx ends
// (so that no handler stays blocked through shutdown), and logs when each
// kind's initial state was delivered.
func (o *syncOrder) run(ctx context.Context, w *Watcher) {
	for _, p := range o.prereqs {
		select {
		case <-p.done.Done():
		case <-ctx.Done():
		}
	}
	o.openOnce.Do(func() { close(o.open) })
	if ctx.Err() != nil {
		return
	}
	w.log.Info("kinds pods depend on delivered; delivering pods", "after", time.Since(w.startedAt))
	for _, g := range o.gated {
		select {
		case <-g.done.Done():
			w.log.Info("kind delivered", "kind", g.kind, "after", time.Since(w.startedAt))
		case <-ctx.Done():
			return
		}
	}
}

// gatedHandler holds callbacks until open is closed.
type gatedHandler struct {
	open <-chan struct{}
	h    cache.ResourceEventHandler
}

func (g gatedHandler) OnAdd(obj any, isInInitialList bool) {
	<-g.open
	g.h.OnAdd(obj, isInInitialList)
}

func (g gatedHandler) OnUpdate(oldObj, newObj any) {
	<-g.open
	g.h.OnUpdate(oldObj, newObj)
}

func (g gatedHandler) OnDelete(obj any) {
	<-g.open
	g.h.OnDelete(obj)
}
