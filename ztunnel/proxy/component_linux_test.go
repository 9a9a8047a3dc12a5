//go:build linux

package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/proxy"
	"github.com/weftmesh/weft/ztunnel/telemetry"
	"github.com/weftmesh/weft/ztunnel/tunnel"
)

// The component test network: three pod namespaces on a bridge inside a
// fourth ("node") namespace. a and b are enrolled (in-pod redirect rules,
// listeners, workloads in the state); c is outside the mesh.
const (
	ipA   = "10.77.0.1"
	ipB   = "10.77.0.2"
	ipC   = "10.77.0.3"
	vip   = "10.96.0.10"
	echoH = "echo.demo.svc.cluster.local"
)

func run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func inNS(t testing.TB, ns string, args ...string) {
	t.Helper()
	run(t, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

type topology struct {
	prefix string
	ns     map[string]*netns.NetNS
}

func newTopology(t testing.TB, pods map[string]string, enrolled ...string) *topology {
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
	rand.Read(rnd[:])
	top := &topology{prefix: "wt-ztp-" + hex.EncodeToString(rnd[:]) + "-", ns: map[string]*netns.NetNS{}}
	names := []string{"node"}
	for n := range pods {
		names = append(names, n)
	}
	for _, n := range names {
		ns, err := netns.NewNamed(top.prefix + n)
		if err != nil {
			t.Fatal(err)
		}
		name := top.prefix + n
		t.Cleanup(func() { _ = ns.Close(); _ = netns.RemoveNamed(name) })
		top.ns[n] = ns
	}
	node := top.prefix + "node"
	inNS(t, node, "ip", "link", "add", "br0", "type", "bridge")
	inNS(t, node, "ip", "link", "set", "br0", "up")
	for n, ip := range pods {
		pod := top.prefix + n
		inNS(t, node, "ip", "link", "add", "v"+n, "type", "veth", "peer", "name", "eth0", "netns", pod)
		inNS(t, node, "ip", "link", "set", "v"+n, "master", "br0", "up")
		inNS(t, pod, "ip", "addr", "add", ip+"/24", "dev", "eth0")
		inNS(t, pod, "ip", "link", "set", "eth0", "up")
		inNS(t, pod, "ip", "link", "set", "lo", "up")
		inNS(t, pod, "ip", "route", "add", "default", "dev", "eth0")
	}
	for _, n := range enrolled {
		installRedirect(t, top.prefix+n)
	}
	return top
}

// installRedirect installs the in-pod redirect rules and policy routing of
// ISTIO-COMPAT.md ("In-pod redirect rules") in pod namespace ns.
func installRedirect(t testing.TB, ns string) {
	rules := [][]string{
		{"-t", "mangle", "-N", "WT_PRERT"}, {"-t", "mangle", "-N", "WT_OUTPUT"},
		{"-t", "mangle", "-A", "PREROUTING", "-j", "WT_PRERT"}, {"-t", "mangle", "-A", "OUTPUT", "-j", "WT_OUTPUT"},
		{"-t", "mangle", "-A", "WT_PRERT", "-m", "mark", "--mark", "0x539/0xfff", "-j", "CONNMARK", "--set-xmark", "0x111/0xfff"},
		{"-t", "mangle", "-A", "WT_OUTPUT", "-m", "connmark", "--mark", "0x111/0xfff", "-j", "CONNMARK", "--restore-mark", "--nfmask", "0xffffffff", "--ctmask", "0xffffffff"},
		{"-t", "nat", "-N", "WT_PRERT"}, {"-t", "nat", "-N", "WT_OUTPUT"},
		{"-t", "nat", "-A", "PREROUTING", "-j", "WT_PRERT"}, {"-t", "nat", "-A", "OUTPUT", "-j", "WT_OUTPUT"},
		{"-t", "nat", "-A", "WT_PRERT", "-s", "169.254.7.127", "-p", "tcp", "-j", "ACCEPT"},
		{"-t", "nat", "-A", "WT_PRERT", "!", "-d", "127.0.0.1/32", "-p", "tcp", "!", "--dport", "15008", "-m", "mark", "!", "--mark", "0x539/0xfff", "-j", "REDIRECT", "--to-ports", "15006"},
		{"-t", "nat", "-A", "WT_OUTPUT", "-d", "169.254.7.127", "-p", "tcp", "-j", "ACCEPT"},
		{"-t", "nat", "-A", "WT_OUTPUT", "-p", "tcp", "-m", "mark", "--mark", "0x111/0xfff", "-j", "ACCEPT"},
		{"-t", "nat", "-A", "WT_OUTPUT", "!", "-d", "127.0.0.1/32", "-o", "lo", "-j", "ACCEPT"},
		{"-t", "nat", "-A", "WT_OUTPUT", "!", "-d", "127.0.0.1/32", "-p", "tcp", "-m", "mark", "!", "--mark", "0x539/0xfff", "-j", "REDIRECT", "--to-ports", "15001"},
	}
	for _, r := range rules {
		inNS(t, ns, append([]string{"iptables", "-w"}, r...)...)
	}
	inNS(t, ns, "ip", "rule", "add", "fwmark", "0x111/0xfff", "pref", "32764", "lookup", "100")
	inNS(t, ns, "ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")
}

// serveEcho runs an app in ns on port: it writes the client address it sees
// as one line, then echoes.
func serveEcho(t testing.TB, ns *netns.NetNS, port int) {
	ln, err := ns.Listen(context.Background(), nil, "tcp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { _ = c.Close() }()
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				_, _ = fmt.Fprintf(c, "%s\n", host)
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

// talk connects from ns to addr and returns the client address the app saw
// after an echo round trip, or an error when the connection is refused or
// closed by the mesh.
func talk(ns *netns.NetNS, addr string) (string, error) {
	c, err := open(ns, addr)
	if err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	return c.exchange("hello")
}

type client struct {
	net.Conn
	r *bufio.Reader
}

func open(ns *netns.NetNS, addr string) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := ns.Dial(ctx, nil, "tcp4", addr)
	if err != nil {
		return nil, err
	}
	return &client{Conn: c, r: bufio.NewReader(c)}, nil
}

// exchange reads the greeting line (once) and echoes msg.
func (c *client) exchange(msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(8 * time.Second))
	seen, err := c.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting: %w", err)
	}
	if err := c.echo(msg); err != nil {
		return "", err
	}
	return strings.TrimSpace(seen), nil
}

func (c *client) echo(msg string) error {
	_ = c.SetDeadline(time.Now().Add(8 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	b := make([]byte, len(msg))
	if _, err := io.ReadFull(c.r, b); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if string(b) != msg {
		return fmt.Errorf("echo %q, want %q", b, msg)
	}
	return nil
}

func resource(t testing.TB, name string, m proto.Message) *discoveryv3.Resource {
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: name, Resource: a}
}

func workload(name, ip, sa string, services map[string]*wl.PortList) *wl.Address {
	return &wl.Address{Type: &wl.Address_Workload{Workload: &wl.Workload{
		Uid: "c1//Pod/demo/" + name, Name: name, Namespace: "demo", ServiceAccount: sa,
		Addresses: [][]byte{netip.MustParseAddr(ip).AsSlice()}, TunnelProtocol: wl.TunnelProtocol_HBONE,
		Services: services, CanonicalName: name, Node: "node1",
	}}}
}

type fetcher struct{ ca *identitytest.CA }

func (f fetcher) Fetch(_ context.Context, _ identity.ID, csr []byte, validity time.Duration) ([]string, error) {
	now := time.Now()
	return f.ca.SignCSR(csr, now.Add(-time.Minute), now.Add(validity))
}

type mesh struct {
	top   *topology
	store *wds.Store
	mgr   *inpod.Manager
	logs  *syncBuffer
	rec   *telemetry.Recorder
	met   *telemetry.Metrics
	px    *proxy.Proxy
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newMesh(t testing.TB, pods map[string]string) *mesh {
	return newMeshWith(t, pods, nil)
}

// newMeshWith is newMesh with the proxy's configuration adjusted by
// configure (nil: as is).
func newMeshWith(t testing.TB, pods map[string]string, configure func(*proxy.Config)) *mesh {
	top := newTopology(t, pods, "a", "b")
	m := &mesh{top: top, logs: &syncBuffer{}}
	certs, err := certmgr.New(certmgr.Config{Fetcher: fetcher{identitytest.NewCA("test-root")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = certs.Close() })
	m.store = wds.New(wds.Config{})
	if err := m.store.Apply(wds.AddressType, []*discoveryv3.Resource{
		resource(t, "c1//Pod/demo/a", workload("a", ipA, "client", nil)),
		resource(t, "c1//Pod/demo/b", workload("b", ipB, "server", map[string]*wl.PortList{
			"demo/" + echoH: {Ports: []*wl.Port{{ServicePort: 80, TargetPort: 8080}}}})),
		resource(t, "demo/"+echoH, &wl.Address{Type: &wl.Address_Service{Service: &wl.Service{
			Name: "echo", Namespace: "demo", Hostname: echoH,
			Addresses: []*wl.NetworkAddress{{Address: netip.MustParseAddr(vip).AsSlice()}},
			Ports:     []*wl.Port{{ServicePort: 80, TargetPort: 8080}}}}}),
	}, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.store.Apply(wds.AuthorizationType, nil, nil); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tcfg := tunnel.Config{Certs: certs, Log: log}
	tc, err := tunnel.NewClient(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.Close() })
	ts, err := tunnel.NewServer(tcfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.DrainTimeout = 3 * time.Second
	m.met = telemetry.NewMetrics()
	m.rec = telemetry.NewRecorder(m.met, slog.New(slog.NewJSONHandler(m.logs, nil)))
	pcfg := proxy.Config{
		Store: m.store, Certs: certs, Tunnels: tc, Inbound: ts, Recorder: m.rec,
		PreserveSource: true, ReadyTimeout: time.Second, ConnectTimeout: 2 * time.Second, Log: log,
	}
	if configure != nil {
		configure(&pcfg)
	}
	px, err := proxy.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	m.px = px
	m.mgr = inpod.NewManager(inpod.ManagerConfig{Handler: px, DrainTimeout: 3 * time.Second, Log: log})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.mgr.Close(ctx)
	})
	for _, p := range []struct{ name, sa string }{{"a", "client"}, {"b", "server"}} {
		f, err := os.Open(netns.NamedDir + "/" + top.prefix + p.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.mgr.Add(context.Background(), "uid-"+p.name, &zdsapi.WorkloadInfo{Name: p.name, Namespace: "demo", ServiceAccount: p.sa}, f); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func (m *mesh) policy(t testing.TB, a *securityapi.Authorization) func() {
	t.Helper()
	key := a.Namespace + "/" + a.Name
	if err := m.store.Apply(wds.AuthorizationType, []*discoveryv3.Resource{resource(t, key, a)}, nil); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := m.store.Apply(wds.AuthorizationType, nil, []string{key}); err != nil {
			t.Fatal(err)
		}
	}
}

func principal(s string) *securityapi.StringMatch {
	return &securityapi.StringMatch{MatchType: &securityapi.StringMatch_Exact{Exact: s}}
}

func rule(m *securityapi.Match) []*securityapi.Rule {
	return []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{m}}}}}
}

func TestComponent(t *testing.T) {
	m := newMesh(t, map[string]string{"a": ipA, "b": ipB, "c": ipC})
	serveEcho(t, m.top.ns["b"], 8080)
	serveEcho(t, m.top.ns["c"], 9090)
	a, c := m.top.ns["a"], m.top.ns["c"]

	t.Run("service VIP over HBONE keeps the source address", func(t *testing.T) {
		seen, err := talk(a, vip+":80")
		if err != nil {
			t.Fatal(err)
		}
		if seen != ipA {
			t.Errorf("app saw client %s, want %s", seen, ipA)
		}
		waitFor(t, func() bool { return strings.Contains(m.logs.String(), `"hbone_addr":"10.77.0.2:15008"`) })
		logs := m.logs.String()
		for _, want := range []string{`"msg":"connection complete"`, `"direction":"outbound"`, `"direction":"inbound"`,
			`"service":"echo.demo.svc.cluster.local"`, `"identity":"spiffe://cluster.local/ns/demo/sa/client"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("access log lacks %s:\n%s", want, logs)
			}
		}
	})
	t.Run("connection table names both identities", func(t *testing.T) {
		held, err := open(a, vip+":80")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = held.Close() }()
		if _, err := held.exchange("hi"); err != nil {
			t.Fatal(err)
		}
		const client, server = "spiffe://cluster.local/ns/demo/sa/client", "spiffe://cluster.local/ns/demo/sa/server"
		got := map[string][2]string{}
		for _, cs := range m.rec.Connections() {
			if cs.Protocol == "HBONE" {
				got[cs.Direction] = [2]string{cs.SrcIdentity, cs.DstIdentity}
			}
		}
		for _, dir := range []string{"outbound", "inbound"} {
			if got[dir] != [2]string{client, server} {
				t.Errorf("%s connection identities %q, want [%s %s]", dir, got[dir], client, server)
			}
		}
	})
	t.Run("pod IP over HBONE", func(t *testing.T) {
		if seen, err := talk(a, ipB+":8080"); err != nil || seen != ipA {
			t.Fatalf("seen %q, %v", seen, err)
		}
	})
	t.Run("passthrough outside the mesh", func(t *testing.T) {
		if seen, err := talk(a, ipC+":9090"); err != nil || seen != ipA {
			t.Fatalf("seen %q, %v", seen, err)
		}
	})
	t.Run("plaintext inbound allowed under PERMISSIVE", func(t *testing.T) {
		if seen, err := talk(c, ipB+":8080"); err != nil || seen != ipC {
			t.Fatalf("seen %q, %v", seen, err)
		}
	})
	t.Run("authz deny answers the tunnel with 401", func(t *testing.T) {
		defer m.policy(t, &securityapi.Authorization{Name: "deny-client", Namespace: "demo", Scope: securityapi.Scope_NAMESPACE,
			Action: securityapi.Action_DENY, Rules: rule(&securityapi.Match{Principals: []*securityapi.StringMatch{principal("cluster.local/ns/demo/sa/client")}})})()
		if _, err := talk(a, vip+":80"); err == nil {
			t.Fatal("denied connection went through")
		}
		if _, err := talk(c, ipB+":8080"); err != nil {
			t.Fatalf("plaintext from c should still pass: %v", err)
		}
		waitFor(t, func() bool { return counted(t, m, "istio_tcp_connections_failed_total", "source", "DENY") > 0 })
		waitFor(t, func() bool { return counted(t, m, "istio_tcp_connections_failed_total", "destination", "DENY") > 0 })
	})
	t.Run("authz allow", func(t *testing.T) {
		defer m.policy(t, &securityapi.Authorization{Name: "allow-client", Namespace: "demo", Scope: securityapi.Scope_NAMESPACE,
			Action: securityapi.Action_ALLOW, Rules: rule(&securityapi.Match{Principals: []*securityapi.StringMatch{principal("cluster.local/ns/demo/sa/client")}})})()
		if _, err := talk(a, vip+":80"); err != nil {
			t.Fatalf("allowed connection failed: %v", err)
		}
		if _, err := talk(c, ipB+":8080"); err == nil {
			t.Fatal("plaintext connection allowed though no ALLOW matches it")
		}
	})
	t.Run("STRICT refuses plaintext", func(t *testing.T) {
		defer m.policy(t, &securityapi.Authorization{Name: "istio_converted_static_strict", Namespace: "istio-system", Scope: securityapi.Scope_GLOBAL,
			Action: securityapi.Action_DENY, Rules: rule(&securityapi.Match{NotPrincipals: []*securityapi.StringMatch{
				{MatchType: &securityapi.StringMatch_Presence{Presence: &emptypb.Empty{}}}}})})()
		if _, err := talk(c, ipB+":8080"); err == nil {
			t.Fatal("plaintext accepted under STRICT")
		}
		if _, err := talk(a, vip+":80"); err != nil {
			t.Fatalf("mTLS refused under STRICT: %v", err)
		}
	})
	t.Run("NACK keeps the last good state", func(t *testing.T) {
		bad := workload("b", ipB, "server", nil)
		bad.GetWorkload().Addresses = [][]byte{{1, 2, 3}}
		if err := m.store.Apply(wds.AddressType, []*discoveryv3.Resource{resource(t, "c1//Pod/demo/b", bad)}, nil); err == nil {
			t.Fatal("bad workload accepted")
		}
		if _, err := talk(a, vip+":80"); err != nil {
			t.Fatalf("traffic broken after NACK: %v", err)
		}
	})
	t.Run("fail closed without configuration for the destination pod", func(t *testing.T) {
		if err := m.store.Apply(wds.AddressType, nil, []string{"c1//Pod/demo/b"}); err != nil {
			t.Fatal(err)
		}
		// b is now unknown: a's traffic to it passes through as plain TCP,
		// and b's own ztunnel, with no configuration for b, refuses it
		// rather than let plaintext reach the app.
		if _, err := talk(a, ipB+":8080"); err == nil {
			t.Fatal("plaintext reached a pod without configuration")
		}
		if err := m.store.Apply(wds.AddressType, []*discoveryv3.Resource{resource(t, "c1//Pod/demo/b", workload("b", ipB, "server",
			map[string]*wl.PortList{"demo/" + echoH: {Ports: []*wl.Port{{ServicePort: 80, TargetPort: 8080}}}}))}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := talk(a, vip+":80"); err != nil {
			t.Fatalf("traffic not restored: %v", err)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		mfs, err := m.met.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, mf := range mfs {
			for _, mt := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range mt.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["connection_security_policy"] == "mutual_tls" {
					found[mf.GetName()+"/"+labels["reporter"]] = true
				}
			}
		}
		for _, want := range []string{"istio_tcp_connections_opened_total/source", "istio_tcp_connections_opened_total/destination",
			"istio_tcp_sent_bytes_total/source", "istio_tcp_received_bytes_total/destination", "istio_tcp_connections_failed_total/destination"} {
			if !found[want] {
				t.Errorf("no mutual_tls series %s (have %v)", want, found)
			}
		}
	})
	t.Run("drain lets open connections finish and refuses new ones", func(t *testing.T) {
		held, err := open(a, vip+":80")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = held.Close() }()
		if _, err := held.exchange("one"); err != nil {
			t.Fatal(err)
		}
		pod := m.mgr.Pod("uid-b")
		m.mgr.Del("uid-b")
		<-pod.Draining()
		if err := held.echo("two"); err != nil {
			t.Fatalf("open connection cut by drain: %v", err)
		}
		if _, err := talk(a, vip+":80"); err == nil {
			t.Fatal("new connection accepted by a draining pod")
		}
		_ = held.Close()
		select {
		case <-pod.Context().Done():
		case <-time.After(10 * time.Second):
			t.Fatal("drain did not finish")
		}
	})
}

// counted sums a counter's series with the given reporter and response flags.
func counted(t testing.TB, m *mesh, name, reporter, flags string) float64 {
	mfs, err := m.met.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["reporter"] == reporter && l["response_flags"] == flags {
				v += mt.GetCounter().GetValue()
			}
		}
	}
	return v
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in time")
}
