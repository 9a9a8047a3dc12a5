//go:build linux

package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/netns"
)

// Sizes of the benchmark's transfers.
const (
	benchSmall     = 64      // bytes of one small round trip
	benchSmallRTs  = 6       // small round trips per transport per op
	benchBulk      = 1 << 18 // bytes each way of the single-stream transfer
	benchStreams   = 8       // concurrent streams of the multi-stream transfer
	benchBulkPerSt = 1 << 16 // bytes each way of each of those streams
	benchTimeout   = 30 * time.Second
)

// BenchmarkTransports compares HBONE over QUIC with HBONE over HTTP/2
// between two pods' netns on one veth pair (the "underlay"), through the
// real Client and Server (the server echoes), in four cases:
//
//   - offload: the veth as created (TSO/GSO on, no loss);
//   - loss=0%, loss=1%, loss=5%: packets segmented to wire size before
//     they cross the veth (gso_max_segs 1 on both ends), so that an
//     iptables "statistic --mode random" DROP on each end's INPUT drops
//     that share of wire packets in each direction.
//
// Each op runs, for each transport in turn on its pooled connection:
// benchSmallRTs times a new tunnel plus a 64-byte round trip (latency),
// 256 KiB each way on one stream, and 64 KiB each way on each of 8
// concurrent streams (where one lost TCP segment stalls every HTTP/2
// stream, and QUIC stalls only the stream that lost it), while one more
// stream measures 64-byte round trips under that load. Reported per case:
// p50/p99 latency (µs), p99 under load, MB/s of both transfers, and the
// quic/h2 ratio of each.
//
//	go test -run '^$' -bench Transports -benchtime 30x ./ztunnel/tunnel
func BenchmarkTransports(b *testing.B) {
	n := newNet(b, nil)
	u := openUnderlay(b, n)
	cases := []struct {
		name string
		wire bool
		loss float64
	}{
		{"offload", false, 0},
		{"loss=0%", true, 0},
		{"loss=1%", true, 0.01},
		{"loss=5%", true, 0.05},
	}
	for _, c := range cases {
		if c.wire {
			n.wireSizedPackets(b)
		}
		// New clients per case: a TCP connection keeps the segment size
		// limits of the moment it connected.
		quic, _ := n.client(b, n.certs)
		h2, err := NewClient(Config{Certs: n.certs})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			undo := n.randomLoss(b, c.loss)
			defer undo()
			benchTransports(b, n, u, h2, quic)
		})
		_ = h2.Close()
		_ = quic.Close()
	}
}

// transportRun is what one transport measured in one case.
type transportRun struct {
	name     string
	c        *Client
	lat      []time.Duration // new tunnel + small round trip
	loaded   []time.Duration // small round trips during the multi-stream transfer
	oneBytes int64
	oneBusy  time.Duration
	manyByte int64
	manyBusy time.Duration
	veth     vethCount // the underlay's own drops during this transport's ops
}

func benchTransports(b *testing.B, n *testNet, u *underlay, h2, quic *Client) {
	h := &transportRun{name: hbone3.TransportH2, c: h2}
	q := &transportRun{name: hbone3.TransportQUIC, c: quic}
	// Warm both pools (handshakes are not what is measured).
	for _, r := range []*transportRun{h, q} {
		if err := benchOp(n, u, &transportRun{name: r.name, c: r.c}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		for _, r := range []*transportRun{h, q} {
			if err := benchOp(n, u, r); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	pct := func(l []time.Duration, p float64) float64 {
		if len(l) == 0 {
			return 0
		}
		s := slices.Clone(l)
		slices.Sort(s)
		return float64(s[int(p*float64(len(s)-1))].Microseconds())
	}
	mbps := func(bytes int64, busy time.Duration) float64 { return float64(bytes) / busy.Seconds() / 1e6 }
	for _, m := range []struct {
		unit string
		f    func(*transportRun) float64
	}{
		{"p50-µs", func(r *transportRun) float64 { return pct(r.lat, 0.5) }},
		{"p99-µs", func(r *transportRun) float64 { return pct(r.lat, 0.99) }},
		{"loaded-p99-µs", func(r *transportRun) float64 { return pct(r.loaded, 0.99) }},
		{"MB/s", func(r *transportRun) float64 { return mbps(r.oneBytes, r.oneBusy) }},
		{"8x-MB/s", func(r *transportRun) float64 { return mbps(r.manyByte, r.manyBusy) }},
		{"veth-drop-%", func(r *transportRun) float64 { return r.veth.dropPct() }},
	} {
		hv, qv := m.f(h), m.f(q)
		b.ReportMetric(hv, "h2-"+m.unit)
		b.ReportMetric(qv, "quic-"+m.unit)
		if hv > 0 {
			b.ReportMetric(qv/hv, "quic/h2-"+m.unit)
		}
	}
}

// benchOp runs one op of one transport, adding to r.
func benchOp(n *testNet, u *underlay, r *transportRun) (err error) {
	before, err := u.count()
	if err != nil {
		return err
	}
	defer func() {
		after, cerr := u.count()
		r.veth.add(before, after)
		err = errors.Join(err, cerr)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	for range benchSmallRTs {
		start := time.Now()
		conn, err := open(ctx, n, r)
		if err != nil {
			return err
		}
		err = smallRoundTrip(conn)
		_ = conn.Close()
		if err != nil {
			return fmt.Errorf("%s round trip: %w", r.name, err)
		}
		r.lat = append(r.lat, time.Since(start))
	}

	conn, err := open(ctx, n, r)
	if err != nil {
		return err
	}
	start := time.Now()
	err = bulk(conn, benchBulk)
	_ = conn.Close()
	if err != nil {
		return fmt.Errorf("%s bulk: %w", r.name, err)
	}
	r.oneBusy += time.Since(start)
	r.oneBytes += 2 * benchBulk

	conns := make([]net.Conn, benchStreams+1)
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	for i := range conns {
		if conns[i], err = open(ctx, n, r); err != nil {
			return err
		}
	}
	if err := sameConnection(conns); err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	errs := make(chan error, benchStreams)
	done := make(chan struct{})
	var probe sync.WaitGroup
	var loaded []time.Duration
	var probeErr error
	probe.Go(func() {
		probeConn := conns[benchStreams]
		for {
			select {
			case <-done:
				return
			default:
			}
			t := time.Now()
			if probeErr = smallRoundTrip(probeConn); probeErr != nil {
				return
			}
			loaded = append(loaded, time.Since(t))
		}
	})
	start = time.Now()
	for _, c := range conns[:benchStreams] {
		go func() { errs <- bulk(c, benchBulkPerSt) }()
	}
	var bulkErr error
	for range benchStreams {
		bulkErr = errors.Join(bulkErr, <-errs)
	}
	r.manyBusy += time.Since(start)
	close(done)
	probe.Wait()
	if err := errors.Join(bulkErr, probeErr); err != nil {
		return fmt.Errorf("%s %d streams: %w", r.name, benchStreams, err)
	}
	r.manyByte += 2 * benchStreams * benchBulkPerSt
	r.loaded = append(r.loaded, loaded...)
	return nil
}

// open opens a tunnel from pod a to pod b's echo and checks its transport.
func open(ctx context.Context, n *testNet, r *transportRun) (net.Conn, error) {
	conn, err := r.c.Connect(ctx, n.request())
	if err != nil {
		return nil, fmt.Errorf("%s connect: %w", r.name, err)
	}
	if got := transportOf(conn); got != r.name {
		_ = conn.Close()
		return nil, fmt.Errorf("transport %s, want %s", got, r.name)
	}
	return conn, nil
}

// sameConnection checks that the tunnels share one underlying connection
// (the pool did not spread them).
func sameConnection(conns []net.Conn) error {
	for _, c := range conns[1:] {
		if c.LocalAddr().String() != conns[0].LocalAddr().String() {
			return fmt.Errorf("tunnels on %s and %s: want one connection", conns[0].LocalAddr(), c.LocalAddr())
		}
	}
	return nil
}

// smallRoundTrip writes benchSmall bytes and reads their echo.
func smallRoundTrip(c net.Conn) error {
	var msg, got [benchSmall]byte
	_ = c.SetDeadline(time.Now().Add(benchTimeout))
	if _, err := c.Write(msg[:]); err != nil {
		return err
	}
	_, err := io.ReadFull(c, got[:])
	return err
}

// bulk writes size bytes while reading their echo.
func bulk(c net.Conn, size int) error {
	_ = c.SetDeadline(time.Now().Add(benchTimeout))
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, c, int64(size))
		done <- err
	}()
	_, werr := c.Write(make([]byte, size))
	return errors.Join(werr, <-done)
}

// wireSizedPackets makes both ends of the veth segment GSO/TSO packets
// before they cross it (gso_max_segs 1), so the loss rules see wire
// packets; connections made afterwards keep it.
func (n *testNet) wireSizedPackets(b *testing.B) {
	b.Helper()
	for _, p := range []string{"a", "b"} {
		sh(b, "ip", "netns", "exec", n.prefix+p, "ip", "link", "set", "eth0", "gso_max_segs", "1")
	}
}

// randomLoss drops the share p of the packets arriving on each end of the
// veth (so p in each direction) until undo; p 0 adds no rule. The rules
// live in the test's namespaces and go with them in any case.
func (n *testNet) randomLoss(b *testing.B, p float64) (undo func()) {
	b.Helper()
	if p == 0 {
		return func() {}
	}
	rule := []string{"INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random",
		"--probability", strconv.FormatFloat(p, 'f', -1, 64), "-j", "DROP"}
	for _, ns := range []string{"a", "b"} {
		sh(b, append([]string{"ip", "netns", "exec", n.prefix + ns, "iptables", "-w", "-A"}, rule...)...)
	}
	return func() {
		for _, ns := range []string{"a", "b"} {
			sh(b, append([]string{"ip", "netns", "exec", n.prefix + ns, "iptables", "-w", "-D"}, rule...)...)
		}
	}
}

// underlay reads the veth pair's counters in the test's two namespaces.
type underlay struct{ ns [2]*netns.NetNS }

func openUnderlay(b *testing.B, n *testNet) *underlay {
	b.Helper()
	u := &underlay{}
	for i, p := range []string{"a", "b"} {
		ns, err := netns.Open(netns.NamedDir + "/" + n.prefix + p)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ns.Close() })
		u.ns[i] = ns
	}
	return u
}

// vethCount is packets the veth ends passed to their peer and packets
// they dropped doing so (the peer's backlog was full): drops of the
// harness itself, not of the loss rules.
type vethCount struct{ sent, dropped uint64 }

func (u *underlay) count() (vethCount, error) {
	var c vethCount
	for _, ns := range u.ns {
		err := ns.Do(func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			if st := l.Attrs().Statistics; st != nil {
				c.sent += st.TxPackets
				c.dropped += st.TxDropped
			}
			return nil
		})
		if err != nil {
			return c, fmt.Errorf("veth counters: %w", err)
		}
	}
	return c, nil
}

func (c *vethCount) add(before, after vethCount) {
	c.sent += after.sent - before.sent
	c.dropped += after.dropped - before.dropped
}

func (c vethCount) dropPct() float64 {
	if c.sent+c.dropped == 0 {
		return 0
	}
	return 100 * float64(c.dropped) / float64(c.sent+c.dropped)
}
