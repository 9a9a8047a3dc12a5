//go:build linux

package iptables

import (
	"sync"
	"testing"
)

// writeCounter wraps a Backend and counts the calls that change rules.
type writeCounter struct {
	Backend
	mu     sync.Mutex
	writes []string
}

func (w *writeCounter) note(op string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, op)
}

func (w *writeCounter) NewChain(t, c string) error {
	w.note("-N " + c)
	return w.Backend.NewChain(t, c)
}
func (w *writeCounter) ClearChain(t, c string) error {
	w.note("-F " + c)
	return w.Backend.ClearChain(t, c)
}
func (w *writeCounter) Append(t, c string, s ...string) error {
	w.note("-A " + c)
	return w.Backend.Append(t, c, s...)
}
func (w *writeCounter) Insert(t, c string, p int, s ...string) error {
	w.note("-I " + c)
	return w.Backend.Insert(t, c, p, s...)
}

// TestKernelReapplyWritesNothing checks, against the real iptables, that
// applying an installed rule set rewrites nothing (no capture gap).
func TestKernelReapplyWritesNothing(t *testing.T) {
	ns := kernelNS(t)
	r, _ := newKernelRedirector(t, Config{RedirectDNS: true})
	if err := r.Apply(ns); err != nil {
		t.Fatal(err)
	}
	wc := &writeCounter{Backend: r.tables}
	again := NewRedirector(r.cfg, wc, NetlinkRoutes{})
	if err := again.Apply(ns); err != nil {
		t.Fatal(err)
	}
	if len(wc.writes) != 0 {
		t.Fatalf("re-apply wrote %v", wc.writes)
	}
	if err := again.Remove(ns); err != nil {
		t.Fatal(err)
	}
}
