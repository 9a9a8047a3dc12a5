package proxy

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/ztunnel/telemetry"
)

// fakeClock is a settable time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// refusals returns weft_ztunnel_connections_refused_total by
// "direction/reason".
func refusals(t *testing.T, m *telemetry.Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "weft_ztunnel_connections_refused_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out[l["direction"]+"/"+l["reason"]] = mt.GetCounter().GetValue()
		}
	}
	return out
}

type capsFixture struct {
	caps  *connCaps
	met   *telemetry.Metrics
	logs  *bytes.Buffer
	clock *fakeClock
}

func newCapsFixture(perPod, perNode int) *capsFixture {
	f := &capsFixture{met: telemetry.NewMetrics(), logs: &bytes.Buffer{}, clock: &fakeClock{t: time.Unix(1000, 0)}}
	f.caps = newConnCaps(perPod, perNode, telemetry.NewRecorder(f.met, nil))
	f.caps.now = f.clock.now
	return f
}

func TestCapsAccounting(t *testing.T) {
	type step struct {
		pod, dir string
		release  int // release this many of the slots held by pod/dir first
		want     bool
	}
	tests := []struct {
		name            string
		perPod, perNode int
		steps           []step
		wantRefused     map[string]float64
		wantOpen        int64
	}{
		{
			name: "pod cap per direction", perPod: 2, perNode: 100,
			steps: []step{
				{pod: "a", dir: "outbound", want: true}, {pod: "a", dir: "outbound", want: true},
				{pod: "a", dir: "outbound", want: false}, {pod: "a", dir: "outbound", want: false},
				// the other direction and other pods have caps of their own
				{pod: "a", dir: "inbound", want: true}, {pod: "a", dir: "inbound", want: true},
				{pod: "a", dir: "inbound", want: false},
				{pod: "b", dir: "outbound", want: true},
				// a freed slot is admitted again
				{pod: "a", dir: "outbound", release: 1, want: true},
				{pod: "a", dir: "outbound", want: false},
			},
			wantRefused: map[string]float64{"outbound/pod_limit": 3, "inbound/pod_limit": 1},
			wantOpen:    5,
		},
		{
			name: "node cap across pods and directions", perPod: 10, perNode: 3,
			steps: []step{
				{pod: "a", dir: "outbound", want: true}, {pod: "b", dir: "inbound", want: true},
				{pod: "c", dir: "outbound", want: true},
				{pod: "a", dir: "inbound", want: false}, {pod: "d", dir: "outbound", want: false},
				{pod: "b", dir: "inbound", release: 1, want: true},
				{pod: "b", dir: "inbound", want: false},
			},
			wantRefused: map[string]float64{"inbound/node_limit": 2, "outbound/node_limit": 1},
			wantOpen:    3,
		},
		{
			name: "the pod cap is checked first and a node refusal takes no pod slot", perPod: 1, perNode: 1,
			steps: []step{
				{pod: "a", dir: "outbound", want: true},
				{pod: "a", dir: "outbound", want: false}, // pod_limit
				{pod: "b", dir: "outbound", want: false}, // node_limit
				{pod: "a", dir: "outbound", release: 1, want: true},
				{pod: "b", dir: "outbound", want: false}, // node_limit
			},
			wantRefused: map[string]float64{"outbound/pod_limit": 1, "outbound/node_limit": 2},
			wantOpen:    1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCapsFixture(tt.perPod, tt.perNode)
			pods := map[string]*podCaps{}
			held := map[string][]*slot{}
			for i, s := range tt.steps {
				pc := pods[s.pod]
				if pc == nil {
					pc = f.caps.pod(slog.New(slog.DiscardHandler))
					pods[s.pod] = pc
				}
				key := s.pod + "/" + s.dir
				for range s.release {
					held[key][0].release()
					held[key] = held[key][1:]
				}
				got := pc.acquire(s.dir)
				if (got != nil) != s.want {
					t.Fatalf("step %d (%s %s): admitted %v, want %v", i, s.pod, s.dir, got != nil, s.want)
				}
				if got != nil {
					held[key] = append(held[key], got)
				}
			}
			if diff := cmp.Diff(tt.wantRefused, refusals(t, f.met)); diff != "" {
				t.Errorf("refusals (-want +got):\n%s", diff)
			}
			if got := f.caps.open(); got != tt.wantOpen {
				t.Errorf("node open %d, want %d", got, tt.wantOpen)
			}
			var n int64
			for _, pc := range pods {
				out, in := pc.counts()
				n += out + in
			}
			if n != tt.wantOpen {
				t.Errorf("pods hold %d slots, node %d", n, tt.wantOpen)
			}
			for _, ss := range held {
				for _, s := range ss {
					s.release()
				}
			}
			if got := f.caps.open(); got != 0 {
				t.Errorf("after releasing everything the node holds %d", got)
			}
		})
	}
}

func TestCapsReleaseIsIdempotent(t *testing.T) {
	f := newCapsFixture(1, 1)
	pc := f.caps.pod(slog.New(slog.DiscardHandler))
	s := pc.acquire("inbound")
	if s == nil {
		t.Fatal("first connection refused")
	}
	s.release()
	s.release() // a second close path must not free a slot it does not hold
	var none *slot
	none.release()
	if out, in := pc.counts(); out != 0 || in != 0 || f.caps.open() != 0 {
		t.Fatalf("after a double release: pod %d/%d, node %d", out, in, f.caps.open())
	}
	a, b := pc.acquire("inbound"), pc.acquire("inbound")
	if a == nil || b != nil {
		t.Fatalf("after a double release the cap admits %v, %v; want one", a != nil, b != nil)
	}
}

func TestCapsConcurrent(t *testing.T) {
	f := newCapsFixture(50, 120)
	var pods []*podCaps
	for range 4 {
		pods = append(pods, f.caps.pod(slog.New(slog.DiscardHandler)))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxOpen := int64(0)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := pods[g%len(pods)]
			dir := []string{"outbound", "inbound"}[g%2]
			var held []*slot
			for i := range 2000 {
				if s := pc.acquire(dir); s != nil {
					held = append(held, s)
				}
				mu.Lock()
				maxOpen = max(maxOpen, f.caps.open())
				mu.Unlock()
				if i%3 == 0 && len(held) > 0 {
					held[0].release()
					held[0].release()
					held = held[1:]
				}
			}
			for _, s := range held {
				s.release()
			}
		}()
	}
	wg.Wait()
	if maxOpen > 120 {
		t.Errorf("node held %d at once, cap 120", maxOpen)
	}
	if f.caps.open() != 0 {
		t.Errorf("node holds %d after every slot was released", f.caps.open())
	}
	for i, pc := range pods {
		if out, in := pc.counts(); out != 0 || in != 0 {
			t.Errorf("pod %d holds %d/%d", i, out, in)
		}
	}
}

func TestCapsRefusalLogIsRateLimited(t *testing.T) {
	f := newCapsFixture(1, 100)
	log := slog.New(slog.NewTextHandler(f.logs, nil)).With("pod", "demo/a")
	pc := f.caps.pod(log)
	other := f.caps.pod(slog.New(slog.NewTextHandler(f.logs, nil)).With("pod", "demo/b"))
	if pc.acquire("outbound") == nil || other.acquire("outbound") == nil {
		t.Fatal("first connections refused")
	}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	for range 500 {
		pc.acquire("outbound")
		f.clock.add(time.Millisecond) // 500 refusals over half a second
	}
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "refused=1 ") || !strings.Contains(got[0], "pod=demo/a") ||
		!strings.Contains(got[0], "reason=pod_limit") {
		t.Fatalf("after 500 refusals in 0.5 s want one line for the first; got %q", got)
	}
	// Another pod logs on its own schedule.
	other.acquire("outbound")
	if got := lines(); len(got) != 2 || !strings.Contains(got[1], "pod=demo/b") {
		t.Fatalf("the second pod's first refusal was not logged: %q", got)
	}
	f.clock.add(600 * time.Millisecond)
	pc.acquire("outbound")
	got := lines()
	if len(got) != 3 || !strings.Contains(got[2], "refused=500 ") {
		t.Fatalf("a second later want one line counting the 499 unlogged refusals and this one; got %q", got)
	}
	if n := refusals(t, f.met)["outbound/pod_limit"]; n != 502 {
		t.Errorf("metric counted %v refusals, want 502 (every one)", n)
	}
}
