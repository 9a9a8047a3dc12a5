//go:build linux

package tunnel

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/anypb"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/proxy"
)

// The test network: pods a (client) and b (server) in two namespaces joined
// by a veth pair.
const (
	ipA = "10.78.0.1"
	ipB = "10.78.0.2"
)

func sh(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// certs is a proxy.Certificates that issues from a test CA.
type certs struct {
	ca *identitytest.CA
	mu sync.Mutex
	m  map[identity.ID]*identity.Certificate
}

func (c *certs) Track(identity.ID)  {}
func (c *certs) Forget(identity.ID) {}
func (c *certs) Roots() *x509.CertPool {
	return c.ca.Pool()
}
func (c *certs) Get(_ context.Context, id identity.ID) (*identity.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[id] == nil {
		c.m[id] = c.ca.MustIssue(id)
	}
	return c.m[id], nil
}

var _ proxy.Certificates = (*certs)(nil)

// inbound is what the server side saw.
type inbound struct {
	mu   sync.Mutex
	reqs []proxy.InboundRequest
}

func (in *inbound) handler(pod *inpod.Pod) proxy.InboundHandler {
	return func(ctx context.Context, req proxy.InboundRequest, s proxy.InboundStream) {
		in.mu.Lock()
		in.reqs = append(in.reqs, req)
		in.mu.Unlock()
		c, err := s.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}
}

func (in *inbound) seen() []proxy.InboundRequest {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]proxy.InboundRequest(nil), in.reqs...)
}

type testNet struct {
	prefix string
	ca     *identitytest.CA
	certs  *certs
	store  *wds.Store
	pods   map[string]*inpod.Pod
	in     *inbound
	idA    identity.ID
	idB    identity.ID
	mgr    *inpod.Manager
}

func workload(name, ip string, quic bool) *wl.Workload {
	w := &wl.Workload{Uid: "Kubernetes//Pod/demo/" + name, Name: name, Namespace: "demo",
		Addresses: [][]byte{netip.MustParseAddr(ip).AsSlice()}, ServiceAccount: "sa-" + name,
		TunnelProtocol: wl.TunnelProtocol_HBONE, Status: wl.WorkloadStatus_HEALTHY}
	if quic {
		w.Extensions = []*wl.Extension{{Name: wds.ExtensionHBONEQUIC}}
	}
	return w
}

// newNet builds the two pods, serves both with a QUIC-enabled Server and
// returns the pieces a client needs. handleUDP may be nil.
func newNet(t testing.TB, handleUDP func(context.Context, *inpod.Pod, *hbone3.UDPRequest)) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, bin := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	n := &testNet{prefix: "wt-tun-" + hex.EncodeToString(rnd[:]) + "-", ca: identitytest.NewCA("tunnel-test"),
		pods: map[string]*inpod.Pod{}, in: &inbound{}}
	n.certs = &certs{ca: n.ca, m: map[identity.ID]*identity.Certificate{}}
	for _, p := range []string{"a", "b"} {
		ns, err := netns.NewNamed(n.prefix + p)
		if err != nil {
			t.Fatal(err)
		}
		name := n.prefix + p
		t.Cleanup(func() { _ = ns.Close(); _ = netns.RemoveNamed(name) })
	}
	a, b := n.prefix+"a", n.prefix+"b"
	sh(t, "ip", "netns", "exec", a, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
	for p, ip := range map[string]string{a: ipA, b: ipB} {
		sh(t, "ip", "netns", "exec", p, "ip", "addr", "add", ip+"/24", "dev", "eth0")
		sh(t, "ip", "netns", "exec", p, "ip", "link", "set", "eth0", "up")
		sh(t, "ip", "netns", "exec", p, "ip", "link", "set", "lo", "up")
	}

	n.store = wds.New(wds.Config{})
	var res []*discoveryv3.Resource
	for _, w := range []*wl.Workload{workload("a", ipA, true), workload("b", ipB, true)} {
		any, err := anypb.New(&wl.Address{Type: &wl.Address_Workload{Workload: w}})
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, &discoveryv3.Resource{Name: w.Uid, Resource: any})
	}
	if err := n.store.Apply(wds.AddressType, res, nil); err != nil {
		t.Fatal(err)
	}
	n.idA = identity.ID{TrustDomain: identity.DefaultTrustDomain, Namespace: "demo", ServiceAccount: "sa-a"}
	n.idB = identity.ID{TrustDomain: identity.DefaultTrustDomain, Namespace: "demo", ServiceAccount: "sa-b"}

	srv, err := NewServer(Config{Certs: n.certs, QUIC: true, HandleUDP: handleUDP})
	if err != nil {
		t.Fatal(err)
	}
	srv.DrainTimeout = time.Second
	mgr := inpod.NewManager(inpod.ManagerConfig{QUIC: true, DrainTimeout: time.Second,
		Handler: inpod.HandlerFunc(func(pod *inpod.Pod) {
			id := identity.ID{TrustDomain: identity.DefaultTrustDomain, Namespace: pod.Namespace, ServiceAccount: pod.ServiceAccount}
			_ = srv.Serve(pod.Context(), pod.Listeners.InboundHBONE, id, n.in.handler(pod))
		})})
	t.Cleanup(func() {
		// Bounded (the manager waits for the pods' servers), so that a
		// server that never returns fails the test and the network
		// namespaces are still removed after it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan struct{})
		go func() { mgr.Close(ctx); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second): // the drain's 5 s, the release's wait for the server, a margin
			t.Error("the manager did not close: a pod's server did not return")
		}
	})
	n.mgr = mgr
	for _, p := range []string{"a", "b"} {
		n.add(t, p)
	}
	return n
}

// add enrolls pod p ("a" or "b") with the manager, as ZDS does.
func (n *testNet) add(t testing.TB, p string) {
	t.Helper()
	f, err := os.Open(netns.NamedDir + "/" + n.prefix + p)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.mgr.Add(context.Background(), "uid-"+p, &zdsapi.WorkloadInfo{Name: p, Namespace: "demo", ServiceAccount: "sa-" + p}, f); err != nil {
		t.Fatal(err)
	}
	n.pods[p] = n.mgr.Pod("uid-" + p)
}

// client returns a QUIC-enabled Client with its own metrics registry and
// a QUIC attempt timeout generous enough for a loaded machine.
func (n *testNet) client(t testing.TB, certs proxy.Certificates) (*Client, *Metrics) {
	t.Helper()
	return n.clientTimeout(t, certs, 5*time.Second)
}

// clientTimeout is client with the given QUIC attempt timeout.
func (n *testNet) clientTimeout(t testing.TB, certs proxy.Certificates, quicTimeout time.Duration) (*Client, *Metrics) {
	t.Helper()
	met, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(Config{Certs: certs, QUIC: true, Store: n.store, Metrics: met,
		QUICHandshakeTimeout: quicTimeout, FallbackPeriod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, met
}

func (n *testNet) request(expected ...identity.ID) proxy.TunnelRequest {
	if expected == nil {
		expected = []identity.ID{n.idB}
	}
	return proxy.TunnelRequest{
		Pod: n.pods["a"], Source: n.idA, SourceIP: netip.MustParseAddr(ipA),
		Addr: netip.AddrPortFrom(netip.MustParseAddr(ipB), inpod.InboundHBONEPort), Expected: expected,
		Authority: ipB + ":8080", Header: http.Header{"Forwarded": {`for="` + ipA + `"`}},
	}
}

func echo(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q %v", b, err)
	}
}

func transportOf(c net.Conn) string {
	if t, ok := c.(interface{ Transport() string }); ok {
		return t.Transport()
	}
	if _, ok := c.(*hbone.Stream); ok {
		return hbone3.TransportH2
	}
	return "?"
}

// TestQUICConnect opens a tunnel over QUIC between two pods' servers and
// checks both identities, the transport both sides report, and that the
// inbound stream counts as one of the server pod's connections.
func TestQUICConnect(t *testing.T) {
	n := newNet(t, nil)
	c, met := n.client(t, n.certs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.Connect(ctx, n.request())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	echo(t, conn)
	if got := transportOf(conn); got != hbone3.TransportQUIC {
		t.Errorf("transport = %s, want %s", got, hbone3.TransportQUIC)
	}
	if got := conn.(interface{ PeerIdentity() string }).PeerIdentity(); got != n.idB.String() {
		t.Errorf("server identity = %s, want %s", got, n.idB)
	}
	reqs := n.in.seen()
	if len(reqs) != 1 {
		t.Fatalf("server saw %d requests", len(reqs))
	}
	type view struct{ Peer, Authority, Transport, Forwarded string }
	want := view{n.idA.String(), ipB + ":8080", hbone3.TransportQUIC, `for="` + ipA + `"`}
	got := view{reqs[0].Peer.String(), reqs[0].Authority, reqs[0].Transport, reqs[0].Header.Get("Forwarded")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inbound request (-want +got):\n%s", diff)
	}
	if got := n.pods["b"].Connections(); got != 1 {
		t.Errorf("server pod tracks %d connections, want 1", got)
	}
	if got := testutil.ToFloat64(met.tunnels.WithLabelValues("outbound", "quic")); got != 1 {
		t.Errorf("outbound quic tunnels = %v, want 1", got)
	}
	_ = conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	for n.pods["b"].Connections() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := n.pods["b"].Connections(); got != 0 {
		t.Errorf("server pod still tracks %d connections after close", got)
	}
}

// TestQUICIdentity checks identities both ways: the client refuses a
// server that is not the expected identity, and the server refuses a
// client whose certificate it does not trust.
func TestQUICIdentity(t *testing.T) {
	n := newNet(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("client checks server", func(t *testing.T) {
		c, _ := n.client(t, n.certs)
		other := identity.ID{TrustDomain: identity.DefaultTrustDomain, Namespace: "demo", ServiceAccount: "not-b"}
		if conn, err := c.Connect(ctx, n.request(other)); err == nil {
			_ = conn.Close()
			t.Fatal("connected to a server with the wrong identity")
		}
	})
	t.Run("server checks client", func(t *testing.T) {
		rogue := &certs{ca: identitytest.NewCA("rogue"), m: map[identity.ID]*identity.Certificate{}}
		// The rogue client trusts the real CA (so it would accept b), but
		// presents a certificate of its own CA.
		c, _ := n.client(t, &rogueCerts{certs: rogue, roots: n.ca.Pool()})
		if conn, err := c.Connect(ctx, n.request()); err == nil {
			_ = conn.Close()
			t.Fatal("server accepted a client certificate from an untrusted CA")
		}
	})
	if got := len(n.in.seen()); got != 0 {
		t.Errorf("server handler saw %d requests, want 0", got)
	}
}

// rogueCerts presents its own CA's certificates but trusts roots.
type rogueCerts struct {
	*certs
	roots *x509.CertPool
}

func (r *rogueCerts) Roots() *x509.CertPool { return r.roots }

// TestQUICFallback drops UDP 15008 in the server's netns, before any
// QUIC connection or after one is pooled: the tunnel goes over HTTP/2 once
// the QUIC attempt times out, and the next one to that address goes
// straight to HTTP/2.
func TestQUICFallback(t *testing.T) {
	for _, tc := range []struct {
		name      string
		quicFirst bool
	}{{"blocked from the start", false}, {"blocked under a pooled connection", true}} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNet(t, nil)
			c, met := n.clientTimeout(t, n.certs, time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if tc.quicFirst {
				conn, err := c.Connect(ctx, n.request())
				if err != nil {
					t.Fatal(err)
				}
				echo(t, conn)
				_ = conn.Close()
				if got := transportOf(conn); got != hbone3.TransportQUIC {
					t.Fatalf("first connect: transport = %s, want %s", got, hbone3.TransportQUIC)
				}
			}
			sh(t, "ip", "netns", "exec", n.prefix+"b", "iptables", "-w", "-A", "INPUT", "-p", "udp", "--dport", "15008", "-j", "DROP")
			for i, maxWait := range []time.Duration{3 * time.Second, 400 * time.Millisecond} {
				start := time.Now()
				conn, err := c.Connect(ctx, n.request())
				if err != nil {
					t.Fatalf("connect %d: %v", i, err)
				}
				echo(t, conn)
				_ = conn.Close()
				if got := transportOf(conn); got != hbone3.TransportH2 {
					t.Errorf("connect %d: transport = %s, want %s", i, got, hbone3.TransportH2)
				}
				if d := time.Since(start); d > maxWait {
					t.Errorf("connect %d took %v, want at most %v", i, d, maxWait)
				}
			}
			if got := testutil.ToFloat64(met.fallbacks); got != 2 {
				t.Errorf("fallbacks = %v, want 2", got)
			}
			for _, r := range n.in.seen()[btoi(tc.quicFirst):] {
				if r.Transport != "" {
					t.Errorf("inbound request over %q, want HTTP/2", r.Transport)
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestConnectUDP opens a CONNECT-UDP flow from a to b and checks that the
// server's HandleUDP gets the destination pod, the target and the client's
// identity, and that datagrams pass both ways.
func TestConnectUDP(t *testing.T) {
	type seen struct {
		Pod, Peer string
		Target    netip.AddrPort
	}
	got := make(chan seen, 1)
	n := newNet(t, func(ctx context.Context, pod *inpod.Pod, req *hbone3.UDPRequest) {
		got <- seen{pod.Name, req.PeerIdentity, req.Target}
		dc, err := req.Accept()
		if err != nil {
			return
		}
		defer dc.Close()
		for {
			b, err := dc.ReadDatagram(ctx)
			if err != nil {
				return
			}
			if err := dc.WriteDatagram(b); err != nil {
				return
			}
		}
	})
	c, _ := n.client(t, n.certs)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target := netip.MustParseAddrPort(ipB + ":5353")
	dst := n.store.WorkloadByIP(wds.NetAddr{IP: netip.MustParseAddr(ipB)})
	dc, err := c.ConnectUDP(ctx, n.pods["a"], dst, target)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	want := seen{"b", n.idA.String(), target}
	select {
	case s := <-got:
		if diff := cmp.Diff(want, s, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("HandleUDP saw (-want +got):\n%s", diff)
		}
	case <-ctx.Done():
		t.Fatal("HandleUDP not called")
	}
	if dc.PeerIdentity() != n.idB.String() {
		t.Errorf("flow peer = %s, want %s", dc.PeerIdentity(), n.idB)
	}
	// Datagrams are unreliable; retry a few times.
	for i := 0; ; i++ {
		if err := dc.WriteDatagram([]byte("dgram")); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		b, err := dc.ReadDatagram(rctx)
		rcancel()
		if err == nil {
			if string(b) != "dgram" {
				t.Fatalf("echoed %q", b)
			}
			break
		}
		if i == 5 || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read datagram: %v", err)
		}
	}
}
