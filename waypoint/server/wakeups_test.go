package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime/trace"
	"slices"
	"strings"
	"testing"
	"time"

	xtrace "golang.org/x/exp/trace"
)

// BenchmarkWaypointWakeups sends the lab bench's request (a 1 KiB POST
// answered with 1 KiB) through the waypoint one at a time, paced as the
// lab bench's 100 rps on one connection (10 ms apart, so every request
// finds the process idle), under the execution tracer, and reports how
// many times a waypoint goroutine was woken (made runnable after
// blocking) per request, and how many goroutines the waypoint or a timer
// started, the system calls it made through the runtime's bookkeeping, and
// the p50 latency (under the tracer). With -v the wake-ups are logged by
// the place the goroutine had blocked, so a hand-off between two of the
// waypoint's goroutines shows up by name. A goroutine belongs to the waypoint if it was started from
// the waypoint's code or by such a goroutine; the client, the backends'
// ztunnel and the backends are the rest of the process ("other").
//
//	go test -run='^$' -bench=WaypointWakeups -benchtime=300x -v ./waypoint/server
func BenchmarkWaypointWakeups(b *testing.B) { benchWakeups(b, 1) }

// BenchmarkWaypointWakeups16 is BenchmarkWaypointWakeups with the
// requests taking turns on 16 client connections, as the lab bench's
// 100 rps on 16 connections: the waypoint's tunnels are streams sharing
// one HBONE connection, idle but for one at a time.
func BenchmarkWaypointWakeups16(b *testing.B) { benchWakeups(b, 16) }

func benchWakeups(b *testing.B, conns int) {
	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		b.Skipf("tracer busy: %v", err)
	}
	traced := true
	stop := func() {
		if traced {
			trace.Stop()
			traced = false
		}
	}
	defer stop()
	m := newMesh(b)
	var clients []*http.Client
	for range conns {
		clients = append(clients, m.httpClient(false))
	}
	next := 0
	get := func() {
		via := clients[next%conns]
		next++
		resp, err := postKiB(via, echoVIP)
		readOK(b, resp, err)
	}
	for range 2 * conns {
		get()
	}
	time.Sleep(20 * time.Millisecond)
	ctx := context.Background()
	var took []time.Duration
	trace.Log(ctx, "wakeups", "start")
	for b.Loop() {
		start := time.Now()
		get()
		took = append(took, time.Since(start))
		time.Sleep(10 * time.Millisecond)
	}
	trace.Log(ctx, "wakeups", "end")
	stop()
	w, err := countWakeups(&buf)
	if err != nil {
		b.Fatal(err)
	}
	n := len(took)
	b.ReportMetric(float64(sum(w.sites))/float64(n), "waypoint-wakeups/req")
	b.ReportMetric(float64(sum(w.starts))/float64(n), "started-goroutines/req")
	b.ReportMetric(float64(w.other)/float64(n), "other-wakeups/req")
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds())/1e3, "p50-us")
	for _, c := range w.sites {
		b.Logf("wake %6.2f/req  blocked in %s", float64(c.n)/float64(n), c.site)
	}
	for _, c := range w.syscalls {
		b.Logf("syscall %3.2f/req  in %s", float64(c.n)/float64(n), c.site)
	}
	b.ReportMetric(float64(sum(w.syscalls))/float64(n), "waypoint-runtime-syscalls/req")
	for _, c := range w.others {
		b.Logf("other %5.2f/req  blocked in %s", float64(c.n)/float64(n), c.site)
	}
	for _, c := range w.starts {
		b.Logf("start %5.2f/req  %s", float64(c.n)/float64(n), c.site)
	}
}

// wakeups is what countWakeups found between the start and end marks.
type wakeups struct {
	sites  []siteCount // waypoint wake-ups by where the goroutine blocked
	starts []siteCount // waypoint and timer goroutines started, by start function
	other  int         // wake-ups of every other goroutine
	others []siteCount // those by where the goroutine blocked
	// syscalls are the waypoint's system calls made through the runtime's
	// bookkeeping (entersyscall), by caller: each wakes the runtime's
	// sysmon thread if it was asleep (pkg/hbone's socket I/O does not).
	syscalls []siteCount
}

type siteCount struct {
	site string
	n    int
}

// countWakeups reads an execution trace and counts the waypoint's
// wake-ups between the log events "start" and "end" of category wakeups.
func countWakeups(r io.Reader) (wakeups, error) {
	tr, err := xtrace.NewReader(r)
	if err != nil {
		return wakeups{}, err
	}
	waypoint := map[xtrace.GoID]bool{}
	blockedAt := map[xtrace.GoID]string{}
	sites, starts, others, syscalls := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	var res wakeups
	counting := false
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return wakeups{}, err
		}
		switch ev.Kind() {
		case xtrace.EventLog:
			if l := ev.Log(); l.Category == "wakeups" {
				counting = l.Message == "start"
			}
		case xtrace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != xtrace.ResourceGoroutine {
				continue
			}
			g := st.Resource.Goroutine()
			from, to := st.Goroutine()
			switch {
			case from == xtrace.GoNotExist && to == xtrace.GoRunnable:
				start := firstFunc(st.Stack)
				// A timer's function (time.AfterFunc) runs in a goroutine
				// started by whichever goroutine ran the timers: it is
				// counted by its function, whoever armed it.
				timer := firstFunc(ev.Stack()) == "time.goFunc"
				wp := !timer && (waypoint[ev.Goroutine()] || fromWaypoint(ev.Stack()))
				waypoint[g] = wp
				if counting && (wp || timer) {
					starts[start]++
				}
			case to == xtrace.GoWaiting:
				blockedAt[g] = waitSite(st.Stack)
			case to == xtrace.GoSyscall && counting && waypoint[g]:
				syscalls[waitSite(st.Stack)]++
			case from == xtrace.GoWaiting && to == xtrace.GoRunnable && counting:
				if waypoint[g] {
					site := blockedAt[g]
					if site == "?" || site == "" {
						site = "? (woken by " + waitSite(ev.Stack()) + ")"
					}
					sites[site]++
				} else {
					res.other++
					others[blockedAt[g]]++
				}
			}
		}
	}
	res.sites, res.starts, res.others, res.syscalls = sorted(sites), sorted(starts), sorted(others), sorted(syscalls)
	return res, nil
}

// sum is the total count of cs.
func sum(cs []siteCount) int {
	total := 0
	for _, c := range cs {
		total += c.n
	}
	return total
}

func sorted(m map[string]int) []siteCount {
	var s []siteCount
	for k, v := range m {
		s = append(s, siteCount{k, v})
	}
	slices.SortFunc(s, func(a, b siteCount) int { return b.n - a.n })
	return s
}

// fromWaypoint reports whether a stack runs the waypoint's own code (not
// this package's test harness).
func fromWaypoint(s xtrace.Stack) bool {
	for f := range s.Frames() {
		if strings.HasPrefix(f.Func, "github.com/weftmesh/weft/waypoint/") && !strings.HasSuffix(f.File, "_test.go") {
			return true
		}
	}
	return false
}

func firstFunc(s xtrace.Stack) string {
	for f := range s.Frames() {
		return trimModule(f.Func)
	}
	return "?"
}

// waitSite names where a goroutine blocked: the innermost frame outside
// the runtime, sync and the network and TLS stacks, with its caller.
func waitSite(s xtrace.Stack) string {
	var names []string
	for f := range s.Frames() {
		fn := f.Func
		if len(names) == 0 && (strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "sync.") ||
			strings.HasPrefix(fn, "internal/") || strings.HasPrefix(fn, "net.") || strings.HasPrefix(fn, "crypto/tls.") ||
			strings.HasPrefix(fn, "bufio.") || strings.HasPrefix(fn, "io.") || strings.HasPrefix(fn, "time.Sleep")) {
			continue
		}
		names = append(names, trimModule(fn))
		if len(names) == 3 {
			break
		}
	}
	if len(names) == 0 {
		return "?"
	}
	return strings.Join(names, " < ")
}

func trimModule(fn string) string { return strings.TrimPrefix(fn, "github.com/weftmesh/weft/") }
