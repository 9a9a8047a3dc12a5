package loadgen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// LatencyConfig is one open-loop request run.
type LatencyConfig struct {
	// Addr is the host:port requests go to; Path their path.
	Addr, Path string
	// Rate is the offered load in requests per second (> 0).
	Rate float64
	// Conns is the number of keep-alive connections sharing the load.
	Conns int
	// Warmup is run at the same rate before the measured window; its
	// samples are discarded.
	Warmup time.Duration
	// Duration is the measured window (> 0).
	Duration time.Duration
	// Timeout bounds one request (default 5s).
	Timeout time.Duration
}

// Validate reports a config that cannot run.
func (c LatencyConfig) Validate() error {
	switch {
	case c.Addr == "":
		return errors.New("latency: no address")
	case c.Rate <= 0:
		return fmt.Errorf("latency: rate %v must be positive", c.Rate)
	case c.Conns <= 0:
		return fmt.Errorf("latency: connections %d must be positive", c.Conns)
	case c.Duration <= 0 || c.Warmup < 0:
		return fmt.Errorf("latency: duration %s and warm-up %s", c.Duration, c.Warmup)
	}
	return nil
}

// LatencyResult is what an open-loop run measured in its window.
type LatencyResult struct {
	Rate  float64 `json:"rate"`
	Conns int     `json:"conns"`
	// Achieved is the completed requests per second in the window.
	Achieved float64 `json:"achieved_rps"`
	// Errors counts failed requests due in the window; Unsent those still
	// queued when the run gave up draining.
	Errors int `json:"errors"`
	Unsent int `json:"unsent"`
	// DrainMS is how long after the last due time the last answer came.
	DrainMS float64 `json:"drain_ms"`
	// Sustained is true when every request due in the window was answered
	// without error and the queue drained within 250 ms of the schedule's
	// end: the path kept up with the offered rate.
	Sustained bool    `json:"sustained"`
	Latency   Latency `json:"latency"`
	FirstErr  string  `json:"first_error,omitempty"`
}

// drainLimit is how long workers keep answering queued requests after the
// schedule ends before they count the rest as unsent.
const drainLimit = time.Second

// OpenLoop offers c.Rate requests per second over c.Conns connections for
// c.Warmup+c.Duration and measures each latency from its due time.
func OpenLoop(ctx context.Context, c LatencyConfig) (LatencyResult, error) {
	if err := c.Validate(); err != nil {
		return LatencyResult{}, err
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Path == "" {
		c.Path = "/"
	}
	interval := time.Duration(float64(time.Second) / c.Rate)
	total := c.Warmup + c.Duration
	n := int(float64(total) / float64(interval))
	start := time.Now().Add(20 * time.Millisecond)
	measureFrom := start.Add(c.Warmup)
	end := start.Add(total)
	due := make(chan time.Time, n+1)

	type worker struct {
		samples  []time.Duration
		errs     int
		unsent   int
		last     time.Time
		firstErr error
	}
	workers := make([]*worker, c.Conns)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{samples: make([]time.Duration, 0, n/c.Conns+16)}
		workers[i] = w
		wg.Add(1)
		go func() { // owned by OpenLoop: ends when due is closed and drained
			defer wg.Done()
			hc := newHTTPConn(c.Addr, hostOf(c.Addr), c.Path)
			defer hc.close()
			for d := range due {
				if ctx.Err() != nil || time.Now().After(end.Add(drainLimit)) {
					if !d.Before(measureFrom) {
						w.unsent++
					}
					continue
				}
				rctx, cancel := context.WithTimeout(ctx, c.Timeout)
				err := hc.do(rctx)
				cancel()
				done := time.Now()
				if d.Before(measureFrom) {
					continue
				}
				w.last = done
				if err != nil {
					w.errs++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.samples = append(w.samples, done.Sub(d))
			}
		}()
	}
	// The schedule: due times are fixed in advance; a late tick sends at
	// once but keeps its due time, so the delay is charged to the path.
	timer := time.NewTimer(time.Until(start))
	for i := range n {
		d := start.Add(time.Duration(i) * interval)
		if wait := time.Until(d); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		due <- d
	}
	timer.Stop()
	close(due)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return LatencyResult{}, fmt.Errorf("latency run: %w", err)
	}
	res := LatencyResult{Rate: c.Rate, Conns: c.Conns}
	var all []time.Duration
	var last time.Time
	for _, w := range workers {
		all = append(all, w.samples...)
		res.Errors += w.errs
		res.Unsent += w.unsent
		if w.last.After(last) {
			last = w.last
		}
		if w.firstErr != nil && res.FirstErr == "" {
			res.FirstErr = w.firstErr.Error()
		}
	}
	res.Achieved = float64(len(all)) / c.Duration.Seconds()
	if !last.IsZero() {
		lastDue := start.Add(time.Duration(n-1) * interval)
		res.DrainMS = ms(max(0, last.Sub(lastDue)))
	}
	res.Sustained = res.Errors == 0 && res.Unsent == 0 && res.DrainMS < 250 && len(all) > 0
	res.Latency = Summarize(all)
	return res, nil
}
