package xds

import (
	"sync"
	"time"
)

// convergence measures, for each change batch, the time from the
// Kubernetes change to the moment every connected client has ACKed it (or
// did not need it).
type convergence struct {
	metrics *Metrics

	mu      sync.Mutex
	batches []batch // ascending seq
	last    time.Duration
}

type batch struct {
	seq uint64
	at  time.Time
}

func (c *convergence) begin(seq uint64, at time.Time) {
	c.mu.Lock()
	c.batches = append(c.batches, batch{seq, at})
	// Bound memory if clients never ACK: keep the newest 1024.
	if n := len(c.batches); n > 1024 {
		c.batches = append([]batch(nil), c.batches[n-1024:]...)
	}
	c.mu.Unlock()
}

// update completes the batches every connection has converged on.
func (c *convergence) update(conns []*conn) {
	minDone := ^uint64(0)
	for _, cn := range conns {
		minDone = min(minDone, cn.doneSeq())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for ; i < len(c.batches) && c.batches[i].seq <= minDone; i++ {
		d := time.Since(c.batches[i].at)
		c.last = d
		if c.metrics != nil {
			c.metrics.convergence.Observe(d.Seconds())
		}
	}
	c.batches = c.batches[i:]
}

// lastConvergence is the most recent batch's convergence time.
func (c *convergence) lastConvergence() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
