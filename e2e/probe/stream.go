package probe

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Outcome classifies one streamed connection.
type Outcome string

// The outcomes of a streamed connection. OK, Refused and Failed are
// acceptable under faults; Truncated and Corrupted never are.
const (
	// OK: every byte sent came back, identical, then a clean end of stream.
	OK Outcome = "ok"
	// Refused: the connection never reached the application (dial error,
	// or the stream ended before the server's greeting line).
	Refused Outcome = "refused"
	// Failed: after the greeting, the client saw an error (reset, timeout).
	Failed Outcome = "failed"
	// Truncated: a clean end of stream (EOF, no error) before every byte
	// sent had come back — data lost without the client being told.
	Truncated Outcome = "truncated"
	// Corrupted: bytes came back that were not the ones sent.
	Corrupted Outcome = "corrupted"
)

// StreamConfig configures a Stream run.
type StreamConfig struct {
	// Targets are host:port addresses of raw TCP echo servers, used round
	// robin.
	Targets []string
	// Duration is how long new connections are started.
	Duration time.Duration
	// Count, when positive, also stops after that many connections.
	Count int
	// Concurrency is how many connections are open at once.
	Concurrency int
	// MinSize and MaxSize bound each connection's payload (bytes); sizes
	// are drawn log-uniformly between them.
	MinSize, MaxSize int
	// Chunk is the write size; Pace is the pause between writes, so that
	// connections stay open long enough to meet faults.
	Chunk int
	Pace  time.Duration
	// Timeout bounds each connection.
	Timeout time.Duration
	// Seed makes payloads and sizes reproducible.
	Seed uint64
	// Window, when positive, splits the report into windows of that
	// length (by connection start) for drift over long runs.
	Window time.Duration
}

// Validate reports what is wrong with c.
func (c StreamConfig) Validate() error {
	switch {
	case len(c.Targets) == 0:
		return errors.New("no targets")
	case c.Duration <= 0:
		return errors.New("duration must be positive")
	case c.Concurrency <= 0:
		return errors.New("concurrency must be positive")
	case c.MinSize <= 0 || c.MaxSize < c.MinSize:
		return fmt.Errorf("sizes %d..%d: want 0 < min <= max", c.MinSize, c.MaxSize)
	case c.Chunk <= 0:
		return errors.New("chunk must be positive")
	case c.Timeout <= 0:
		return errors.New("timeout must be positive")
	}
	return nil
}

// Conn is the record of one connection that did not end OK.
type Conn struct {
	Target  string  `json:"target"`
	Outcome Outcome `json:"outcome"`
	// Start and End are Unix milliseconds.
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// Size is the payload length; Sent and Received what went each way.
	Size     int    `json:"size"`
	Sent     int    `json:"sent"`
	Received int    `json:"received"`
	Err      string `json:"err,omitempty"`
	// GreetMillis is the time from dial to the server's greeting (0 when
	// it never came).
	GreetMillis float64 `json:"greetMs,omitempty"`
	// Served is the IP of the pod that answered, from the echo greeting
	// ({"pod":{"ip":...}}), when it named one.
	Served string `json:"served,omitempty"`
}

// StreamReport is the result of a Stream run.
type StreamReport struct {
	Conns    int             `json:"conns"`
	Outcomes map[Outcome]int `json:"outcomes"`
	// Bytes is the payload bytes verified end to end.
	Bytes int64 `json:"bytes"`
	// Errors counts failure texts (refused and failed), to see why.
	Errors map[string]int `json:"errors,omitempty"`
	// Bad lists every truncated or corrupted connection, and up to 50
	// others that did not end OK.
	Bad []Conn `json:"bad,omitempty"`
	// GreetP50Millis and GreetP99Millis are the time from dial to the
	// server's greeting (connection set-up through the mesh).
	GreetP50Millis float64 `json:"greetP50ms"`
	GreetP99Millis float64 `json:"greetP99ms"`
	// Windows splits the run by StreamConfig.Window.
	Windows []Window `json:"windows,omitempty"`
}

// Window is the part of a run that started in one time window.
type Window struct {
	// Start is Unix milliseconds.
	Start          int64   `json:"start"`
	Conns          int     `json:"conns"`
	NotOK          int     `json:"notOK"`
	GreetP50Millis float64 `json:"greetP50ms"`
	GreetP99Millis float64 `json:"greetP99ms"`
}

// percentile returns the p-th percentile (0..1) of xs, sorting it.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(p*float64(len(xs))))]
}

// Stream runs cfg until its Duration has passed and every open connection
// has ended.
func Stream(ctx context.Context, cfg StreamConfig) (StreamReport, error) {
	if err := cfg.Validate(); err != nil {
		return StreamReport{}, err
	}
	rep := StreamReport{Outcomes: map[Outcome]int{}, Errors: map[string]int{}}
	type win struct {
		conns, notOK int
		greets       []float64
	}
	var (
		wins    = map[int64]*win{}
		greets  []float64
		mu      sync.Mutex
		next    int
		wg      sync.WaitGroup
		others  int
		stopAt  = time.Now().Add(cfg.Duration)
		rootRnd = rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	)
	for range cfg.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(stopAt) {
				mu.Lock()
				if cfg.Count > 0 && next >= cfg.Count {
					mu.Unlock()
					return
				}
				i := next
				next++
				seed := rootRnd.Uint64()
				mu.Unlock()
				target := cfg.Targets[i%len(cfg.Targets)]
				c, n := streamOne(ctx, cfg, target, seed)
				mu.Lock()
				rep.Conns++
				rep.Outcomes[c.Outcome]++
				rep.Bytes += int64(n)
				if c.GreetMillis > 0 {
					greets = append(greets, c.GreetMillis)
				}
				if cfg.Window > 0 {
					k := c.Start / cfg.Window.Milliseconds()
					w := wins[k]
					if w == nil {
						w = &win{}
						wins[k] = w
					}
					w.conns++
					if c.Outcome != OK {
						w.notOK++
					}
					if c.GreetMillis > 0 {
						w.greets = append(w.greets, c.GreetMillis)
					}
				}
				if c.Err != "" {
					rep.Errors[c.Err]++
				}
				switch {
				case c.Outcome == Truncated || c.Outcome == Corrupted:
					rep.Bad = append(rep.Bad, c)
				case c.Outcome != OK && others < 50:
					others++
					rep.Bad = append(rep.Bad, c)
				}
				mu.Unlock()
				if c.Outcome == Refused {
					time.Sleep(50 * time.Millisecond) // don't spin on a dead target
				}
			}
		})
	}
	wg.Wait()
	rep.GreetP50Millis, rep.GreetP99Millis = percentile(greets, 0.5), percentile(greets, 0.99)
	for k, w := range wins {
		rep.Windows = append(rep.Windows, Window{Start: k * cfg.Window.Milliseconds(), Conns: w.conns, NotOK: w.notOK,
			GreetP50Millis: percentile(w.greets, 0.5), GreetP99Millis: percentile(w.greets, 0.99)})
	}
	slices.SortFunc(rep.Windows, func(a, b Window) int { return int(a.Start - b.Start) })
	slices.SortFunc(rep.Bad, func(a, b Conn) int { return int(a.Start - b.Start) })
	return rep, nil
}

// payload returns size bytes from seed.
func payload(seed uint64, size int) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	_, _ = r.Read(b) // ChaCha8.Read never fails
	return b
}

// size draws a log-uniform size in [lo, hi].
func size(r *rand.Rand, lo, hi int) int {
	if lo == hi {
		return lo
	}
	f := float64(lo) * math.Pow(float64(hi)/float64(lo), r.Float64())
	return max(lo, min(hi, int(f)))
}

// streamOne runs one connection and returns its record and the number of
// payload bytes verified.
func streamOne(ctx context.Context, cfg StreamConfig, target string, seed uint64) (Conn, int) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n := size(r, cfg.MinSize, cfg.MaxSize)
	want := payload(seed, n)
	c := Conn{Target: target, Start: time.Now().UnixMilli(), Size: n}
	finish := func(o Outcome, err error) (Conn, int) {
		c.Outcome, c.End = o, time.Now().UnixMilli()
		if err != nil {
			c.Err = errText(err)
		}
		if o == OK {
			return c, n
		}
		return c, 0
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return finish(Refused, err)
	}
	defer func() { _ = conn.Close() }()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	br := bufio.NewReader(conn)
	greeting, err := br.ReadSlice('\n')
	if err != nil {
		return finish(Refused, fmt.Errorf("greeting: %w", err))
	}
	var g struct {
		Pod struct {
			IP string `json:"ip"`
		} `json:"pod"`
	}
	if json.Unmarshal(greeting, &g) == nil {
		c.Served = g.Pod.IP
	}
	c.GreetMillis = float64(time.Since(time.UnixMilli(c.Start)).Microseconds()) / 1000

	// Write paced chunks while reading the echo back; FIN after the last.
	werr := make(chan error, 1)
	go func() { // owned by streamOne: it waits on werr before returning
		var err error
		defer func() { werr <- err }()
		for off := 0; off < n; off += cfg.Chunk {
			end := min(n, off+cfg.Chunk)
			if _, err = conn.Write(want[off:end]); err != nil {
				return
			}
			c.Sent = end
			if cfg.Pace > 0 && end < n {
				select {
				case <-time.After(cfg.Pace):
				case <-ctx.Done():
					err = ctx.Err()
					return
				}
			}
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			err = tc.CloseWrite()
		}
	}()
	got := make([]byte, n+1)
	m, rerr := io.ReadFull(br, got)
	c.Received = m
	switch rerr {
	case io.ErrUnexpectedEOF, io.EOF:
		rerr = nil // a clean end of stream before n+1 bytes; judged below
	case nil:
		_ = conn.Close()
	}
	if rerr != nil {
		_ = conn.Close() // unblock the writer
	}
	wr := <-werr
	hash := func(b []byte) [32]byte { return sha256.Sum256(b) }
	switch {
	case hash(got[:min(m, n)]) != hash(want[:min(m, n)]):
		return finish(Corrupted, fmt.Errorf("bytes differ within the first %d", min(m, n)))
	case m > n:
		return finish(Corrupted, fmt.Errorf("more bytes came back than were sent"))
	case rerr != nil:
		return finish(Failed, rerr)
	case m < n && wr != nil:
		return finish(Failed, fmt.Errorf("write: %w", wr))
	case m < n:
		return finish(Truncated, fmt.Errorf("clean end of stream after %d of %d bytes", m, n))
	case wr != nil:
		return finish(Failed, fmt.Errorf("write: %w", wr))
	}
	return finish(OK, nil)
}

// errText reduces an error to a countable reason.
func errText(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "timeout"
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof: " + err.Error()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}
