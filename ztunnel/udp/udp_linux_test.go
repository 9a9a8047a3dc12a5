//go:build linux

package udp

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
)

const (
	clientIP = "10.98.0.1"
	serverIP = "10.98.0.2"
)

func needKernel(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces, iptables and transparent sockets")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
}

// podPair makes two pod namespaces joined by a veth pair.
func podPair(t testing.TB) (c, s *netns.NetNS) {
	t.Helper()
	mk := func() *netns.NetNS {
		ns, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ns.Close() })
		if err := ns.LoopbackUp(); err != nil {
			t.Fatal(err)
		}
		return ns
	}
	c, s = mk(), mk()
	err := c.Do(func() error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(clientIP + "/24")
		if err := netlink.AddrAdd(v, a); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetNsFd(peer, s.Fd()); err != nil {
			return err
		}
		return netlink.LinkSetUp(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Do(func() error {
		l, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr(serverIP + "/24")
		if err := netlink.AddrAdd(l, a); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// capture installs, by hand, the in-pod rules this package relies on (the
// connmark part of the TCP rule set and the UDP capture: cni/iptables's
// inpod-udp golden).
func capture(t testing.TB, ns *netns.NetNS) {
	t.Helper()
	rules := [][]string{
		{"-t", "mangle", "-A", "PREROUTING", "-m", "mark", "--mark", "0x539/0xfff", "-j", "CONNMARK", "--set-xmark", "0x111/0xfff"},
		{"-t", "mangle", "-A", "PREROUTING", "-i", "lo", "-p", "udp", "-m", "mark", "--mark", "0x112/0xfff", "-j", "TPROXY",
			"--on-port", "15005", "--on-ip", "127.0.0.1", "--tproxy-mark", "0x112/0xfff"},
		{"-t", "mangle", "-A", "OUTPUT", "-m", "connmark", "--mark", "0x111/0xfff", "-j", "CONNMARK", "--restore-mark", "--nfmask", "0xffffffff", "--ctmask", "0xffffffff"},
		{"-t", "mangle", "-A", "OUTPUT", "-p", "udp", "-m", "mark", "--mark", "0x111/0xfff", "-j", "RETURN"},
		{"-t", "mangle", "-A", "OUTPUT", "-p", "udp", "-m", "mark", "--mark", "0x539/0xfff", "-j", "RETURN"},
		{"-t", "mangle", "-A", "OUTPUT", "-o", "lo", "-p", "udp", "-j", "RETURN"},
		{"-t", "mangle", "-A", "OUTPUT", "-p", "udp", "--dport", "53", "-j", "RETURN"},
		{"-t", "mangle", "-A", "OUTPUT", "-p", "udp", "-j", "MARK", "--set-xmark", "0x112/0xfff"},
	}
	err := ns.Do(func() error {
		for _, r := range rules {
			if out, err := exec.Command("iptables", r...).CombinedOutput(); err != nil {
				return fmt.Errorf("iptables %s: %v: %s", strings.Join(r, " "), err, out)
			}
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		for _, mark := range []uint32{0x111, 0x112} {
			r := netlink.NewRule()
			r.Mark = mark
			mask := uint32(0xfff)
			r.Mask = &mask
			r.Table = 100
			if err := netlink.RuleAdd(r); err != nil {
				return err
			}
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: lo.Attrs().Index, Table: 100, Type: unix.RTN_LOCAL,
			Scope: netlink.SCOPE_HOST, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func anyRes(t testing.TB, name string, m proto.Message) *discoveryv3.Resource {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: name, Resource: a}
}

func workload(name, ip string, quic bool) *wl.Workload {
	w := &wl.Workload{Uid: "Kubernetes//Pod/ns1/" + name, Name: name, Namespace: "ns1",
		Addresses: [][]byte{netip.MustParseAddr(ip).AsSlice()}, TunnelProtocol: wl.TunnelProtocol_HBONE, ServiceAccount: name}
	if quic {
		w.Extensions = []*wl.Extension{{Name: wds.ExtensionHBONEQUIC}}
	}
	return w
}

// podHandler records the pods the manager serves.
type podHandler struct {
	mu   sync.Mutex
	pods map[string]*inpod.Pod
}

func (h *podHandler) ServePod(p *inpod.Pod) {
	h.mu.Lock()
	h.pods[p.Name] = p
	h.mu.Unlock()
	<-p.Draining()
}

func (h *podHandler) pod(t testing.TB, name string) *inpod.Pod {
	t.Helper()
	for range 100 {
		h.mu.Lock()
		p := h.pods[name]
		h.mu.Unlock()
		if p != nil {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pod %s not served", name)
	return nil
}

// poolTunnels is Tunnels over an hbone3.Pool dialling from the source
// pod's netns, as tunnel.Client does.
type poolTunnels struct {
	pool *hbone3.Pool
	// refuse makes ConnectUDP answer as a destination that refuses (403).
	refuse atomic.Bool
}

func markControl(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, inpod.Mark) }); err != nil {
		return err
	}
	return serr
}

func (p *poolTunnels) ConnectUDP(ctx context.Context, _ *inpod.Pod, dst *wds.Workload, target netip.AddrPort) (*hbone3.DatagramConn, error) {
	if p.refuse.Load() {
		return nil, &hbone.StatusError{Code: http.StatusForbidden}
	}
	key := hbone.NewKey("spiffe://cluster.local/ns/ns1/sa/client", []string{dst.Identity.String()},
		netip.AddrPortFrom(dst.Addrs[0], 15008), netip.MustParseAddr(clientIP))
	return p.pool.DialUDP(ctx, key, target, http.Header{})
}

// TestFlowsThroughTheMesh runs the whole UDP path in real namespaces: an
// application's datagrams in the client pod are captured, carried over
// CONNECT-UDP to the server pod's ztunnel, delivered from the client's
// address, answered, and the reply reaches the application from the
// original destination. A DENY policy on a port refuses that flow, and a
// destination without QUIC is dropped and counted.
// mesh is two pod namespaces with capture, a Service serving both pods,
// the server pod's CONNECT-UDP server on 15008 and echo applications on
// 7000 and 7001 (7001 denied by policy).
type mesh struct {
	nsC, nsS *netns.NetNS
	store    *wds.Store
	svc      *Service
	metrics  *Metrics
	tunnels  *poolTunnels
}

func newMesh(t testing.TB, idle time.Duration) *mesh {
	t.Helper()
	ctx := context.Background()
	nsC, nsS := podPair(t)
	capture(t, nsC)
	capture(t, nsS)

	store := wds.New(wds.Config{})
	deny := &securityapi.Authorization{Name: "deny-7001", Namespace: "ns1", Scope: securityapi.Scope_NAMESPACE, Action: securityapi.Action_DENY,
		Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{{DestinationPorts: []uint32{7001}}}}}}}}
	if err := store.Apply(wds.AddressType, []*discoveryv3.Resource{
		anyRes(t, "c", &wl.Address{Type: &wl.Address_Workload{Workload: workload("client", clientIP, true)}}),
		anyRes(t, "s", &wl.Address{Type: &wl.Address_Workload{Workload: workload("server", serverIP, true)}}),
		anyRes(t, "n", &wl.Address{Type: &wl.Address_Workload{Workload: workload("noquic", "10.98.0.3", false)}}),
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := store.Apply(wds.AuthorizationType, []*discoveryv3.Resource{anyRes(t, "ns1/deny-7001", deny)}, nil); err != nil {
		t.Fatal(err)
	}

	ca := identitytest.NewCA("udp-test")
	clientCert := ca.MustIssue(identity.MustParseID("spiffe://cluster.local/ns/ns1/sa/client"))
	pool, err := hbone3.NewPool(hbone3.PoolConfig{
		TLSConfig: func(k hbone.Key) (*tls.Config, error) { return ca.ClientTLS(clientCert, k.Identities()...) },
		PacketConn: func(ctx context.Context, _ hbone.Key) (net.PacketConn, error) {
			return nsC.ListenPacket(ctx, &net.ListenConfig{Control: markControl}, "udp4", clientIP+":0")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })

	reg := prometheus.NewRegistry()
	metrics := NewMetrics(reg)
	tunnels := &poolTunnels{pool: pool}
	svc, err := New(Config{Store: store, Tunnels: tunnels, Metrics: metrics, IdleTimeout: idle,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := &podHandler{pods: map[string]*inpod.Pod{}}
	m := inpod.NewManager(inpod.ManagerConfig{Handler: svc.Wrap(h), DrainTimeout: 200 * time.Millisecond})
	t.Cleanup(func() {
		// Bounded: a flow still tracked would hold the drain, and the
		// cleanups queued before this one would never run.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	for _, p := range []struct {
		name string
		ns   *netns.NetNS
	}{{"client", nsC}, {"server", nsS}} {
		f, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", p.ns.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Add(ctx, "uid-"+p.name, &zdsapi.WorkloadInfo{Name: p.name, Namespace: "ns1", ServiceAccount: p.name}, f); err != nil {
			t.Fatal(err)
		}
	}
	serverPod := h.pod(t, "server")
	h.pod(t, "client")

	// The server pod's ztunnel.
	serverTLS, err := ca.ServerTLS("spiffe://cluster.local/ns/ns1/sa/server")
	if err != nil {
		t.Fatal(err)
	}
	qpc, err := nsS.ListenPacket(ctx, &net.ListenConfig{Control: markControl}, "udp4", serverIP+":15008")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = qpc.Close() })
	srv := &hbone3.Server{TLSConfig: serverTLS,
		HandleStream: func(_ context.Context, r *hbone3.Request) { _ = r.Reject(http.StatusNotImplemented) },
		HandleUDP:    func(ctx context.Context, r *hbone3.UDPRequest) { svc.HandleUDP(ctx, serverPod, r) },
		DrainTimeout: 100 * time.Millisecond,
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	srvDone := make(chan struct{})
	go func() { defer close(srvDone); _ = srv.Serve(srvCtx, qpc) }()
	t.Cleanup(func() { stopSrv(); <-srvDone })

	// Echo applications in the server pod on 7000 and 7001; they answer
	// with the address they saw.
	for _, port := range []string{"7000", "7001"} {
		pc, err := nsS.ListenPacket(ctx, nil, "udp4", serverIP+":"+port)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pc.Close() })
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo([]byte(string(buf[:n])+" from "+from.(*net.UDPAddr).IP.String()), from)
			}
		}()
	}

	return &mesh{nsC: nsC, nsS: nsS, store: store, svc: svc, metrics: metrics, tunnels: tunnels}
}

func TestFlowsThroughTheMesh(t *testing.T) {
	needKernel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mm := newMesh(t, 2*time.Second)
	nsC, store, svc, metrics := mm.nsC, mm.store, mm.svc, mm.metrics
	// The client pod also serves on the port it sends to (as the lab's
	// echo pods do): replies from the original destination must not need
	// to bind it.
	busy, err := nsC.ListenPacket(ctx, nil, "udp4", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	appPC, err := nsC.ListenPacket(ctx, nil, "udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	app := appPC.(*net.UDPConn)
	defer app.Close()
	exchange := func(dst string, msg string, tries int) (string, netip.AddrPort, error) {
		to := netip.MustParseAddrPort(dst)
		buf := make([]byte, 2048)
		var lastErr error
		for range tries { // UDP: retry while the tunnel opens
			if _, err := app.WriteToUDPAddrPort([]byte(msg), to); err != nil {
				return "", netip.AddrPort{}, err
			}
			_ = app.SetReadDeadline(time.Now().Add(time.Second))
			n, from, err := app.ReadFromUDPAddrPort(buf)
			if err == nil {
				return string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), nil
			}
			lastErr = err
		}
		return "", netip.AddrPort{}, lastErr
	}

	got, from, err := exchange(serverIP+":7000", "ping", 5)
	if err != nil {
		t.Fatalf("no echo through the mesh: %v (flows %+v)", err, svc.Flows())
	}
	if want := "ping from " + clientIP; got != want || from.String() != serverIP+":7000" {
		t.Fatalf("echo %q from %s, want %q from %s:7000", got, from, want, serverIP)
	}
	if got, _, err := exchange(serverIP+":7000", "again", 5); err != nil || !strings.HasPrefix(got, "again") {
		t.Fatalf("second datagram: %q, %v", got, err)
	}
	if n := testutil.ToFloat64(metrics.opened.WithLabelValues("outbound", "tunnel")); n != 1 {
		t.Errorf("outbound tunnel flows opened = %v, want 1", n)
	}
	if n := testutil.ToFloat64(metrics.opened.WithLabelValues("inbound", "tunnel")); n != 1 {
		t.Errorf("inbound tunnel flows opened = %v, want 1", n)
	}
	// A flow counts a datagram's bytes after its send returns, which can be
	// after the echo is back: poll briefly.
	var sawOut bool
	for deadline := time.Now().Add(2 * time.Second); !sawOut && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, fi := range svc.Flows() {
			if fi.Direction == "outbound" && fi.Path == "tunnel" && fi.Peer == "spiffe://cluster.local/ns/ns1/sa/server" && fi.BytesSent >= 9 && fi.BytesRecv > 9 {
				sawOut = true
			}
		}
	}
	if !sawOut {
		t.Errorf("flow dump lacks the outbound tunnel flow: %+v", svc.Flows())
	}

	// DENY on 7001: no answer; both sides count it.
	if got, _, err := exchange(serverIP+":7001", "denied?", 2); err == nil {
		t.Fatalf("denied port answered %q", got)
	}
	if n := testutil.ToFloat64(metrics.dropped.WithLabelValues("inbound", dropDenied)); n < 1 {
		t.Errorf("inbound denied drops = %v, want >= 1", n)
	}
	if n := testutil.ToFloat64(metrics.dropped.WithLabelValues("outbound", dropDenied)); n < 1 {
		t.Errorf("outbound denied drops = %v, want >= 1", n)
	}

	// A mesh destination without QUIC: dropped, never sent in plaintext.
	if _, _, err := exchange("10.98.0.3:7000", "plain?", 2); err == nil {
		t.Fatal("destination without quic answered")
	}
	if n := testutil.ToFloat64(metrics.dropped.WithLabelValues("outbound", dropNoQUIC)); n < 1 {
		t.Errorf("no_quic drops = %v, want >= 1", n)
	}

	// A DENY on 7000 closes the open inbound flow to it (not only new ones).
	if _, _, err := exchange(serverIP+":7000", "still open", 5); err != nil {
		t.Fatalf("before the deny: %v", err)
	}
	deny7000 := &securityapi.Authorization{Name: "deny-7000", Namespace: "ns1", Scope: securityapi.Scope_NAMESPACE, Action: securityapi.Action_DENY,
		Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{{DestinationPorts: []uint32{7000}}}}}}}}
	if err := store.Apply(wds.AuthorizationType, []*discoveryv3.Resource{anyRes(t, "ns1/deny-7000", deny7000)}, nil); err != nil {
		t.Fatal(err)
	}
	inboundTo7000 := func() bool {
		for _, fi := range svc.Flows() {
			if fi.Direction == "inbound" && fi.Dst == serverIP+":7000" {
				return true
			}
		}
		return false
	}
	for end := time.Now().Add(3 * time.Second); inboundTo7000() && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	if inboundTo7000() {
		t.Errorf("inbound flow to 7000 still open after a DENY: %+v", svc.Flows())
	}

	// Idle flows expire.
	deadline := time.Now().Add(5 * time.Second)
	for len(svc.Flows()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if fl := svc.Flows(); len(fl) != 0 {
		t.Errorf("flows left after the idle timeout: %+v", fl)
	}
}
