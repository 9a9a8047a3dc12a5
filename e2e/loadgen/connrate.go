package loadgen

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// ConnRateResult is how many new connections per second a path completed,
// each carrying one small HTTP/1.1 request and its answer.
type ConnRateResult struct {
	Workers int     `json:"workers"`
	PerS    float64 `json:"conns_per_s"`
	// Errors counts failed connections, warm-up included.
	Errors   int     `json:"errors"`
	Latency  Latency `json:"latency"`
	FirstErr string  `json:"first_error,omitempty"`
}

// ConnRate runs workers closed loops, each dialling addr, sending one
// request, reading the answer and closing, and counts those completed
// after warmup for dur. With serverCloses the request carries
// Connection: close and the server closes first. A request that does not
// answer within 2 s counts as an error.
func ConnRate(ctx context.Context, addr string, workers int, serverCloses bool, warmup, dur time.Duration) (ConnRateResult, error) {
	if workers <= 0 || dur <= 0 {
		return ConnRateResult{}, fmt.Errorf("connection rate: workers %d, duration %s", workers, dur)
	}
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+dur)
	type tally struct {
		samples  []time.Duration
		errs     int
		firstErr error
	}
	tallies := make([]*tally, workers)
	var wg sync.WaitGroup
	for i := range tallies {
		t := &tally{}
		tallies[i] = t
		wg.Add(1)
		go func() { // owned by ConnRate: ends at end or with ctx
			defer wg.Done()
			for ctx.Err() == nil {
				s := time.Now()
				if !s.Before(end) {
					return
				}
				err := oneShot(ctx, addr, hostOf(addr), serverCloses, 2*time.Second)
				if err != nil { // counted in the warm-up too: a hang there hides the window
					t.errs++
					if t.firstErr == nil {
						t.firstErr = err
					}
					continue
				}
				if s.Before(measureFrom) {
					continue
				}
				t.samples = append(t.samples, time.Since(s))
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return ConnRateResult{}, fmt.Errorf("connection rate: %w", err)
	}
	res := ConnRateResult{Workers: workers}
	var all []time.Duration
	for _, t := range tallies {
		all = append(all, t.samples...)
		res.Errors += t.errs
		if t.firstErr != nil && res.FirstErr == "" {
			res.FirstErr = t.firstErr.Error()
		}
	}
	res.PerS = float64(len(all)) / dur.Seconds()
	res.Latency = Summarize(all)
	return res, nil
}
