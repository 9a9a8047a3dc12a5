//go:build linux

package udp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weftmesh/weft/pkg/netns"
)

// benchReplyTimeout is how long a round trip waits for its reply; a later
// reply counts as lost.
const benchReplyTimeout = 200 * time.Millisecond

// BenchmarkUDPRoundTrip measures datagram round trips from an application
// in the client pod to an echo in the server pod through both ztunnels
// (capture, CONNECT-UDP over QUIC, delivery), beside the same round trip
// sent directly (sockets the capture skips) in the same run, alternating.
// Each round trip sends one 64-byte datagram and waits at most 200 ms for
// its echo; a datagram with no echo by then counts as lost. Cases: no
// injected loss, and 1% of the packets arriving on each end of the veth
// underlay dropped (an iptables statistic rule, so about 2% of direct
// round trips lose one of their two datagrams). Reported: p50/p99 round
// trip of each path (answered ones), the loss in %, and the mesh/direct
// ratios.
//
//	go test -run '^$' -bench UDPRoundTrip -benchtime 2000x ./ztunnel/udp
func BenchmarkUDPRoundTrip(b *testing.B) {
	needKernel(b)
	mm := newMesh(b, time.Minute)
	ctx := context.Background()
	open := func(lc *net.ListenConfig) *net.UDPConn {
		pc, err := mm.nsC.ListenPacket(ctx, lc, "udp4", ":0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = pc.Close() })
		return pc.(*net.UDPConn)
	}
	meshC, directC := open(nil), open(&net.ListenConfig{Control: markControl})
	// The direct baseline's echo: a marked socket on 7002, so neither
	// pod's capture touches the exchange.
	directEcho, err := mm.nsS.ListenPacket(ctx, &net.ListenConfig{Control: markControl}, "udp4", serverIP+":7002")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = directEcho.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := directEcho.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = directEcho.WriteTo(buf[:n], from)
		}
	}()
	mesh := &udpPath{c: meshC, dst: netip.MustParseAddrPort(serverIP + ":7000")}
	direct := &udpPath{c: directC, dst: netip.MustParseAddrPort(serverIP + ":7002")}
	// Open the flow and its tunnel.
	for _, p := range []*udpPath{mesh, direct} {
		for !p.roundTrip(b, time.Second) {
		}
	}
	for _, c := range []struct {
		name string
		loss float64
	}{{"loss=0%", 0}, {"loss=1%", 0.01}} {
		b.Run(c.name, func(b *testing.B) {
			undo := underlayLoss(b, mm, c.loss)
			defer undo()
			m, d := &udpPath{c: mesh.c, dst: mesh.dst, seq: mesh.seq}, &udpPath{c: direct.c, dst: direct.dst, seq: direct.seq}
			b.ResetTimer()
			for range b.N {
				m.roundTrip(b, benchReplyTimeout)
				d.roundTrip(b, benchReplyTimeout)
			}
			b.StopTimer()
			mesh.seq, direct.seq = m.seq, d.seq
			for _, r := range []struct {
				unit string
				f    func(*udpPath) float64
			}{
				{"p50-µs", func(p *udpPath) float64 { return p.pct(0.5) }},
				{"p99-µs", func(p *udpPath) float64 { return p.pct(0.99) }},
				{"loss-%", func(p *udpPath) float64 { return p.lossPct() }},
			} {
				mv, dv := r.f(m), r.f(d)
				b.ReportMetric(mv, "mesh-"+r.unit)
				b.ReportMetric(dv, "direct-"+r.unit)
				if dv > 0 {
					b.ReportMetric(mv/dv, "mesh/direct-"+r.unit)
				}
			}
		})
	}
	if got := testutil.ToFloat64(mm.metrics.opened.WithLabelValues("outbound", "tunnel")); got != 1 {
		b.Fatalf("mesh round trips used %v tunnel flows, want 1", got)
	}
}

// udpPath is one way of reaching the echo, with what it measured.
type udpPath struct {
	c     *net.UDPConn
	dst   netip.AddrPort
	seq   uint64
	rtts  []time.Duration
	sent  int
	lost  int
	inbuf [2048]byte
}

// roundTrip sends one numbered datagram and waits up to timeout for its
// echo, skipping late echoes of earlier ones; it reports whether the echo
// came.
func (p *udpPath) roundTrip(b *testing.B, timeout time.Duration) bool {
	p.seq++
	var msg [64]byte
	binary.BigEndian.PutUint64(msg[:], p.seq)
	start := time.Now()
	if _, err := p.c.WriteToUDPAddrPort(msg[:], p.dst); err != nil {
		b.Fatal(err)
	}
	p.sent++
	_ = p.c.SetReadDeadline(start.Add(timeout))
	for {
		n, _, err := p.c.ReadFromUDPAddrPort(p.inbuf[:])
		if err != nil {
			p.lost++
			return false
		}
		if n >= 8 && binary.BigEndian.Uint64(p.inbuf[:8]) == p.seq {
			p.rtts = append(p.rtts, time.Since(start))
			return true
		}
	}
}

func (p *udpPath) pct(q float64) float64 {
	if len(p.rtts) == 0 {
		return 0
	}
	s := slices.Clone(p.rtts)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds())
}

func (p *udpPath) lossPct() float64 {
	if p.sent == 0 {
		return 0
	}
	return 100 * float64(p.lost) / float64(p.sent)
}

// underlayLoss drops the share p of the packets arriving on each end of
// the pods' veth pair (so p in each direction) until undo; p 0 adds no
// rule. The rules live in the test's namespaces.
func underlayLoss(b *testing.B, mm *mesh, p float64) (undo func()) {
	b.Helper()
	if p == 0 {
		return func() {}
	}
	rule := func(op, dev string) []string {
		return []string{"-w", op, "INPUT", "-i", dev, "-m", "statistic", "--mode", "random",
			"--probability", strconv.FormatFloat(p, 'f', -1, 64), "-j", "DROP"}
	}
	ends := []struct {
		ns  *netns.NetNS
		dev string
	}{{mm.nsC, "eth0"}, {mm.nsS, "eth1"}}
	run := func(op string) error {
		for _, e := range ends {
			err := e.ns.Do(func() error {
				if out, err := exec.Command("iptables", rule(op, e.dev)...).CombinedOutput(); err != nil {
					return fmt.Errorf("iptables %s: %v: %s", strings.Join(rule(op, e.dev), " "), err, out)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := run("-A"); err != nil {
		b.Fatal(err)
	}
	return func() {
		if err := run("-D"); err != nil {
			b.Error(err)
		}
	}
}
