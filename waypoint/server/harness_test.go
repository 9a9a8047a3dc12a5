package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weftmesh/weft/pkg/api/l7api"
	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/hbone"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/telemetry"
)

// The test mesh: namespace demo, a waypoint "waypoint", a client pod and
// backend pods behind one fake ztunnel.
var (
	waypointID = identity.MustParseID("spiffe://cluster.local/ns/demo/sa/waypoint")
	clientID   = identity.MustParseID("spiffe://cluster.local/ns/demo/sa/client")
	backendID  = identity.MustParseID("spiffe://cluster.local/ns/demo/sa/echo")
)

const (
	echoVIP   = "10.96.0.10:80"
	echoV2VIP = "10.96.0.11:80"
	tcpVIP    = "10.96.0.12:9000"
	grpcVIP   = "10.96.0.13:50051"
	otherVIP  = "10.96.0.14:80"
	clientIP  = "10.0.2.1"
)

// staticCerts serves fixed certificates from one test CA.
type staticCerts struct {
	ca    *identitytest.CA
	certs map[identity.ID]*identity.Certificate
}

func newCerts(ids ...identity.ID) *staticCerts {
	c := &staticCerts{ca: identitytest.NewCA("test"), certs: map[identity.ID]*identity.Certificate{}}
	for _, id := range ids {
		c.certs[id] = c.ca.MustIssue(id)
	}
	return c
}

func (c *staticCerts) Get(_ context.Context, id identity.ID) (*identity.Certificate, error) {
	if cert, ok := c.certs[id]; ok {
		return cert, nil
	}
	return nil, fmt.Errorf("no certificate for %s", id)
}

func (c *staticCerts) Roots() *x509.CertPool { return c.ca.Pool() }

// mesh is one running test setup.
type mesh struct {
	t       testing.TB
	certs   *staticCerts
	store   *wds.Store
	l7      *l7config.Store
	metrics *telemetry.Metrics
	wpAddr  string
	client  *hbone.Pool
	zt      *fakeZtunnel
	grpcSrv *grpc.Server
	health  *health.Server
	// stop stops the waypoint and waits for its drain.
	stop func()
	// hitsV1 and hitsV2 count the requests each HTTP backend served.
	hitsV1, hitsV2 atomic.Int64
}

// fakeZtunnel is the backends' ztunnel: it serves HBONE with the backend
// identity and connects each authority to a local server.
type fakeZtunnel struct {
	addr    string
	mu      sync.Mutex
	targets map[string]string // authority -> local address
	peers   []string
	fwd     []string
}

func (z *fakeZtunnel) serve(ctx context.Context, r *hbone.Request) {
	z.mu.Lock()
	z.peers = append(z.peers, r.PeerIdentity)
	z.fwd = append(z.fwd, r.Forwarded)
	target, ok := z.targets[r.Authority]
	z.mu.Unlock()
	if r.PeerIdentity != waypointID.String() {
		_ = r.Reject(http.StatusUnauthorized)
		return
	}
	if !ok {
		_ = r.Reject(http.StatusServiceUnavailable)
		return
	}
	var d net.Dialer
	up, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		_ = r.Reject(http.StatusServiceUnavailable)
		return
	}
	defer up.Close()
	st, err := r.Accept()
	if err != nil {
		return
	}
	defer st.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, st)
		_ = up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(st, up)
	_ = st.CloseWrite()
	<-done
}

func (z *fakeZtunnel) seen() (peers, fwd []string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]string(nil), z.peers...), append([]string(nil), z.fwd...)
}

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// backendHandler answers with what it received, naming itself.
func backendHandler(name string, hits *atomic.Int64) http.Handler {
	var calls atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Method == http.MethodConnect { // a toy proxy that echoes
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
			_ = brw.Flush()
			_, _ = io.Copy(c, brw)
			return
		}
		switch r.URL.Path {
		case "/flaky": // every other request fails
			if calls.Add(1)%2 == 1 {
				http.Error(w, "injected", http.StatusServiceUnavailable)
				return
			}
		case "/slow": // 300ms, or ?d=<duration>
			d := 300 * time.Millisecond
			if v, err := time.ParseDuration(r.URL.Query().Get("d")); err == nil {
				d = v
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		case "/kib": // the lab bench's answer: the body read, 1 KiB back
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "1024")
			_, _ = w.Write(kib)
			return
		case "/fixed": // a plain response of known length, no trailers
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "12")
			_, _ = io.WriteString(w, "hello, mesh\n")
			return
		case "/events": // an event stream: one event now, one when ?after= passes
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: first\n\n")
			_ = http.NewResponseController(w).Flush()
			d, _ := time.ParseDuration(r.URL.Query().Get("after"))
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
			_, _ = io.WriteString(w, "data: second\n\n")
			return
		case "/upgrade": // a toy upgraded protocol that echoes
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "want upgrade", http.StatusBadRequest)
				return
			}
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			_ = brw.Flush()
			_, _ = io.Copy(c, brw)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Path", r.URL.RequestURI())
		w.Header().Set("X-Traceparent", r.Header.Get("Traceparent"))
		w.Header().Set("Trailer", "X-Sum")
		_, _ = fmt.Fprintf(w, "%s %s %s", name, r.Method, body)
		w.Header().Set("X-Sum", fmt.Sprint(len(body)))
	})
}

func serveHTTP(t testing.TB, h http.Handler) string {
	ln := listen(t)
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: p}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func serveTCPEcho(t testing.TB) string {
	ln := listen(t)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func anyOf(t testing.TB, m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func addr(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func waypointRef() *wl.GatewayAddress {
	return &wl.GatewayAddress{Destination: &wl.GatewayAddress_Hostname{Hostname: &wl.NamespacedHostname{
		Namespace: "demo", Hostname: "waypoint.demo.svc.cluster.local"}}, HboneMtlsPort: 15008}
}

func service(name, vip string, port, target uint32, waypoint bool, app wl.AppProtocol) *wl.Service {
	s := &wl.Service{Name: name, Namespace: "demo", Hostname: name + ".demo.svc.cluster.local",
		Addresses: []*wl.NetworkAddress{{Address: addr(strings.Split(vip, ":")[0])}},
		Ports:     []*wl.Port{{ServicePort: port, TargetPort: target, AppProtocol: app}}}
	if waypoint {
		s.Waypoint = waypointRef()
	}
	return s
}

func workload(name, ip, sa string, svcs ...string) *wl.Workload {
	w := &wl.Workload{Uid: "Kubernetes//Pod/demo/" + name, Name: name, Namespace: "demo", Addresses: [][]byte{addr(ip)},
		TunnelProtocol: wl.TunnelProtocol_HBONE, ServiceAccount: sa, CanonicalName: strings.Split(name, "-")[0],
		CanonicalRevision: "v1", WorkloadName: name, Services: map[string]*wl.PortList{}}
	for _, s := range svcs {
		w.Services["demo/"+s+".demo.svc.cluster.local"] = &wl.PortList{}
	}
	return w
}

func addressRes(t testing.TB, name string, a *wl.Address) *discoveryv3.Resource {
	return &discoveryv3.Resource{Name: name, Version: "1", Resource: anyOf(t, a)}
}

// newMesh starts backends, their ztunnel and a waypoint fed with static
// configuration.
func newMesh(t testing.TB) *mesh {
	m := &mesh{t: t, certs: newCerts(waypointID, clientID, backendID)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// Backends.
	v1 := serveHTTP(t, backendHandler("v1", &m.hitsV1))
	v2 := serveHTTP(t, backendHandler("v2", &m.hitsV2))
	tcp := serveTCPEcho(t)
	gln := listen(t)
	m.grpcSrv = grpc.NewServer()
	m.health = health.NewServer()
	healthRegister(m.grpcSrv, m.health)
	go func() { _ = m.grpcSrv.Serve(gln) }()
	t.Cleanup(m.grpcSrv.Stop)

	// Their ztunnel.
	m.zt = &fakeZtunnel{targets: map[string]string{
		"10.0.1.1:8080": v1, "10.0.1.2:8080": v2, "10.0.1.3:9000": tcp, "10.0.1.4:50051": gln.Addr().String(),
	}}
	ztLn := listen(t)
	m.zt.addr = ztLn.Addr().String()
	ztTLS, err := identity.ServerConfig(identity.ServerOptions{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return m.certs.certs[backendID].TLSCertificate(), nil
		},
		TrustDomain: "cluster.local", Roots: m.certs.Roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	zt := &hbone.Server{TLSConfig: ztTLS, Handler: hbone.HandlerFunc(m.zt.serve), DrainTimeout: time.Second}
	go func() { _ = zt.Serve(ctx, ztLn) }()

	// Discovery.
	m.store = wds.New(wds.Config{})
	var rs []*discoveryv3.Resource
	for _, s := range []*wl.Service{
		service("echo", echoVIP, 80, 8080, true, wl.AppProtocol_UNKNOWN),
		service("echo-v2", echoV2VIP, 80, 8080, true, wl.AppProtocol_UNKNOWN),
		service("tcp", tcpVIP, 9000, 9000, true, wl.AppProtocol_UNKNOWN),
		service("grpc", grpcVIP, 50051, 50051, true, wl.AppProtocol_GRPC),
		service("other", otherVIP, 80, 8080, false, wl.AppProtocol_UNKNOWN),
		service("waypoint", "10.96.0.100:15008", 15008, 15008, false, wl.AppProtocol_UNKNOWN),
	} {
		rs = append(rs, addressRes(t, s.Namespace+"/"+s.Hostname, &wl.Address{Type: &wl.Address_Service{Service: s}}))
	}
	for _, w := range []*wl.Workload{
		workload("echo-v1", "10.0.1.1", "echo", "echo", "other"),
		workload("echo-v2", "10.0.1.2", "echo", "echo-v2"),
		workload("tcp-1", "10.0.1.3", "echo", "tcp"),
		workload("grpc-1", "10.0.1.4", "echo", "grpc"),
		workload("client-1", clientIP, "client"),
	} {
		rs = append(rs, addressRes(t, w.Uid, &wl.Address{Type: &wl.Address_Workload{Workload: w}}))
	}
	if err := m.store.Apply(wds.AddressType, rs, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.store.Apply(wds.AuthorizationType, nil, nil); err != nil {
		t.Fatal(err)
	}

	// L7 configuration.
	m.l7 = l7config.New(nil)
	m.applyL7(l7api.RouteConfigType, "echo.demo.svc.cluster.local", &l7api.RouteConfig{
		Service: &l7api.ServiceRef{Namespace: "demo", Name: "echo", Hostname: "echo.demo.svc.cluster.local"},
		Routes: []*l7api.Route{{
			Name:  "HTTPRoute/demo/echo/0",
			Match: &l7api.RouteMatch{Headers: []*l7api.HeaderMatch{{Name: "x-version", Value: "v2"}}},
			Backends: []*l7api.WeightedBackend{{Weight: 1, Port: 80,
				Service: &l7api.ServiceRef{Namespace: "demo", Name: "echo-v2", Hostname: "echo-v2.demo.svc.cluster.local"}}},
		}},
	})
	m.applyL7(l7api.L7PolicyType, "demo/deny-delete", &l7api.L7Policy{
		Name: "deny-delete", Namespace: "demo", Action: l7api.Action_DENY,
		Targets: []*l7api.PolicyTarget{{Kind: l7api.PolicyTarget_SERVICE, Namespace: "demo", Name: "echo"}},
		Rules:   []*l7api.L7Rule{{To: []*l7api.Operation{{Methods: []string{"DELETE"}}}}},
	})
	if err := m.l7.Apply(l7api.TrafficPolicyType, nil, nil); err != nil {
		t.Fatal(err)
	}

	// The waypoint.
	m.metrics = telemetry.NewMetrics()
	ztAddr := netip.MustParseAddrPort(m.zt.addr)
	// The waypoint's goroutines carry the profile label side=waypoint
	// (pprof -tagfocus=side=waypoint shows the waypoint alone).
	wpLabels := pprof.WithLabels(ctx, pprof.Labels("side", "waypoint"))
	pprof.SetGoroutineLabels(wpLabels)
	px, err := NewProxy(ProxyConfig{
		Identity: waypointID, Certs: m.certs, Mesh: m.store, L7: m.l7,
		Recorder: telemetry.NewRecorder(m.metrics, accessLogger()),
		Gateway:  "demo/waypoint", ServiceKey: "demo/waypoint.demo.svc.cluster.local",
		ConnectTimeout: 2 * time.Second, SniffTimeout: 200 * time.Millisecond, DrainTimeout: time.Second,
		DialTCP: func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ztAddr.String())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	wpLn := listen(t)
	m.wpAddr = wpLn.Addr().String()
	served := make(chan struct{})
	go func() { defer close(served); _ = px.Serve(ctx, wpLn) }()
	pprof.SetGoroutineLabels(ctx)
	m.stop = func() { cancel(); <-served }
	t.Cleanup(m.stop)

	// The client's ztunnel.
	m.client, err = hbone.NewPool(hbone.PoolConfig{
		TLSConfig: func(hbone.Key) (*tls.Config, error) {
			return identity.ClientConfig(identity.ClientOptions{
				GetClientCertificate: identity.StaticCertificate(m.certs.certs[clientID]),
				TrustDomain:          "cluster.local", Roots: m.certs.Roots, Expected: []identity.ID{waypointID},
			})
		},
		Dial: func(ctx context.Context, k hbone.Key) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", k.DstAddr.String())
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.client.Close() })
	return m
}

func (m *mesh) applyL7(typeURL, name string, msg proto.Message) {
	m.t.Helper()
	if err := m.l7.Apply(typeURL, []*discoveryv3.Resource{{Name: name, Version: "1", Resource: anyOf(m.t, msg)}}, nil); err != nil {
		m.t.Fatal(err)
	}
}

// tunnel opens a CONNECT to the waypoint for authority, as the client's
// ztunnel would.
func (m *mesh) tunnel(ctx context.Context, authority string) (net.Conn, error) {
	key := hbone.NewKey(clientID.String(), []string{waypointID.String()}, netip.MustParseAddrPort(m.wpAddr), netip.Addr{})
	h := http.Header{}
	h.Set("Forwarded", `for="`+clientIP+`:40000"`)
	s, err := m.client.Dial(ctx, key, authority, h)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// httpClient sends requests through the waypoint, with HTTP/2 (h2c) or
// HTTP/1.1 inside the tunnel.
func (m *mesh) httpClient(h2 bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, a string) (net.Conn, error) { return m.tunnel(ctx, a) },
		Protocols:   new(http.Protocols),
	}
	if h2 {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	m.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// grpcConn dials the gRPC service through the waypoint.
func (m *mesh) grpcConn() *grpc.ClientConn {
	cc, err := grpc.NewClient("passthrough:///"+grpcVIP, grpc.WithTransportCredentials(insecureCreds()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return m.tunnel(ctx, a) }))
	if err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func healthRegister(s *grpc.Server, h *health.Server) { healthpb.RegisterHealthServer(s, h) }

func insecureCreds() credentials.TransportCredentials { return insecure.NewCredentials() }

// accessLogger encodes access-log records as production does (JSON) and
// discards them, so tests and benchmarks pay what production pays; with
// WAYPOINT_TEST_LOG set they go to stderr.
func accessLogger() telemetry.AccessLogger {
	if os.Getenv("WAYPOINT_TEST_LOG") == "" {
		return telemetry.NewJSONAccessLog(io.Discard, "access", nil, 0)
	}
	return telemetry.NewJSONAccessLog(os.Stderr, "access", nil, 0)
}
