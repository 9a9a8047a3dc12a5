package xds

import (
	"context"
	"sync"
	"time"
)

// maxFullPushes bounds how many connections build and send a full state
// (the first response to a wildcard subscription, the whole model) at
// once. A full state of 5,000 workloads is a few megabytes between the
// built response, its encoding and the transport's buffers; when many
// clients connect together (a control-plane restart), building them all
// at once would hold that many times over. Later, incremental pushes are
// small and never wait.
const maxFullPushes = 2

// maxFullPushHold is how long one full push may keep its slot: a client
// that reads slowly (or not at all) must not hold back the others, so
// after this the slot is given back even though its Send still runs.
const maxFullPushHold = 2 * time.Second

// fullPushQuiet is how long no full push must have run before the
// OnFullPushesDone hook is called.
const fullPushQuiet = time.Second

// fullPushes limits concurrent full pushes and reports when a burst of
// them is over.
type fullPushes struct {
	slots chan struct{}

	mu      sync.Mutex
	running int         // full pushes holding a slot or waiting for one
	timer   *time.Timer // pending quiet-period hook call
	done    func()
}

func newFullPushes() *fullPushes {
	return &fullPushes{slots: make(chan struct{}, maxFullPushes)}
}

// OnFullPushesDone registers fn to be called, from its own goroutine, once
// full pushes have stopped for a second: after a burst of clients
// connected, the memory their full states took is garbage, and istiod-lite
// returns it to the operating system then. Call it before serving.
func (s *Server) OnFullPushesDone(fn func()) {
	s.fullPushes.mu.Lock()
	s.fullPushes.done = fn
	s.fullPushes.mu.Unlock()
}

// fullPushSlot waits for a full-push slot when the next response of type t
// to c is a full state, and returns the function that gives it back
// (a no-op when no slot was needed). It gives up waiting, taking no slot,
// when ctx ends or the server closes.
func (s *Server) fullPushSlot(ctx context.Context, c *conn, t string) func() {
	c.mu.Lock()
	w := c.watches[t]
	full := w != nil && w.full
	c.mu.Unlock()
	if !full {
		return func() {}
	}
	f := s.fullPushes
	f.begin()
	select {
	case f.slots <- struct{}{}:
		var once sync.Once
		release := func() {
			once.Do(func() {
				<-f.slots
				f.end()
			})
		}
		t := time.AfterFunc(maxFullPushHold, release)
		return func() {
			t.Stop()
			release()
		}
	case <-ctx.Done():
	case <-s.closing:
	}
	f.end()
	return func() {}
}

func (f *fullPushes) begin() {
	f.mu.Lock()
	f.running++
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	f.mu.Unlock()
}

func (f *fullPushes) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running--
	if f.running == 0 && f.done != nil {
		f.timer = time.AfterFunc(fullPushQuiet, f.done)
	}
}
