//go:build linux

package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/anypb"
	capb "istio.io/api/security/v1alpha1"

	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/zds"
)

// fakeIstiod serves delta ADS (one workload, no policies) and the CA on
// one TLS gRPC port, recording what the client sent.
type fakeIstiod struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	capb.UnimplementedIstioCertificateServiceServer
	ca *identitytest.CA
	// workloads are served as the Address resources; nil serves one
	// workload "p" (10.9.0.1).
	workloads []*wl.Workload

	mu           sync.Mutex
	tokens       []string
	impersonated []string
	nodeID       string
	acks, nacks  int
}

func (f *fakeIstiod) DeltaAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	f.mu.Lock()
	f.tokens = append(f.tokens, md.Get("authorization")...)
	f.mu.Unlock()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		f.mu.Lock()
		if req.GetNode().GetId() != "" {
			f.nodeID = req.GetNode().GetId()
		}
		if req.GetResponseNonce() != "" {
			if req.GetErrorDetail() != nil {
				f.nacks++
			} else {
				f.acks++
			}
			f.mu.Unlock()
			continue
		}
		f.mu.Unlock()
		resp := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: req.GetTypeUrl(), Nonce: req.GetTypeUrl() + "-1"}
		if req.GetTypeUrl() == AddressTypeForTest {
			wls := f.workloads
			if wls == nil {
				wls = []*wl.Workload{{Uid: "c//Pod/demo/p", Name: "p", Namespace: "demo", ServiceAccount: "app",
					Addresses: [][]byte{netip.MustParseAddr("10.9.0.1").AsSlice()}, TunnelProtocol: wl.TunnelProtocol_HBONE}}
			}
			for _, w := range wls {
				a, _ := anypb.New(&wl.Address{Type: &wl.Address_Workload{Workload: w}})
				resp.Resources = append(resp.Resources, &discoveryv3.Resource{Name: w.GetUid(), Version: "1", Resource: a})
			}
		}
		if err := stream.Send(resp); err != nil {
			return nil
		}
	}
}

// AddressTypeForTest is the Address type URL.
const AddressTypeForTest = "type.googleapis.com/istio.workload.Address"

func (f *fakeIstiod) CreateCertificate(ctx context.Context, req *capb.IstioCertificateRequest) (*capb.IstioCertificateResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.tokens = append(f.tokens, md.Get("authorization")...)
	if v := req.GetMetadata().GetFields()["ImpersonatedIdentity"]; v != nil {
		f.impersonated = append(f.impersonated, v.GetStringValue())
	}
	f.mu.Unlock()
	now := time.Now()
	chain, err := f.ca.SignCSR([]byte(req.GetCsr()), now.Add(-time.Minute), now.Add(time.Hour))
	if err != nil {
		return nil, err
	}
	return &capb.IstioCertificateResponse{CertChain: chain}, nil
}

// servingCert makes a root and a serving certificate for 127.0.0.1.
func servingCert(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "istiod-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root-cert.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, root
}

// serveFakeIstiod serves fake's discovery and CA over TLS with cert on a
// loopback port until the test ends, and returns the address.
func serveFakeIstiod(t *testing.T, cert tls.Certificate, fake *fakeIstiod) string {
	t.Helper()
	srv := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, fake)
	capb.RegisterIstioCertificateServiceServer(srv, fake)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// writeToken writes the node's bearer token file into dir.
func writeToken(t *testing.T, dir string) string {
	t.Helper()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("node-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return token
}

// TestRunWithControlPlane runs ztunnel against a fake istiod (xDS and CA
// over TLS with bearer tokens) and a fake node agent handing over one pod:
// it becomes ready, fetches the pod's certificate by impersonation, and
// opens the pod's listeners.
func TestRunWithControlPlane(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	dir := t.TempDir()
	cert, root := servingCert(t, dir)
	fake := &fakeIstiod{ca: identitytest.NewCA("mesh-root")}
	addr := serveFakeIstiod(t, cert, fake)
	token := writeToken(t, dir)
	agent, err := zds.Listen(filepath.Join(dir, "ztunnel.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = agent.Close() }()

	cfg := Defaults()
	cfg.XDSAddress, cfg.CAAddress = addr, addr
	cfg.RootCertFile, cfg.TokenFile, cfg.NodeName, cfg.ZDSSocket = root, token, "node-1", agent.Path()
	cfg.PodName, cfg.PodNamespace, cfg.InstanceIP = "ztunnel-abc", "weft-system", netip.MustParseAddr("10.0.0.5")
	cfg.AdminAddr, cfg.MetricsAddr, cfg.ReadinessAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	cfg.DrainTimeout = 2 * time.Second
	cfg.Log.Output = io.Discard

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return")
		}
	}()

	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	conn, err := agent.Accept(actx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.RecvHello(actx); err != nil {
		t.Fatal(err)
	}
	pod, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pod.Close() }()
	_ = pod.LoopbackUp()
	send := func(req *zdsapi.WorkloadRequest, f *os.File) {
		t.Helper()
		if err := conn.Request(actx, req, f); err != nil {
			t.Fatal(err)
		}
	}
	send(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: "uid-p",
		WorkloadInfo: &zdsapi.WorkloadInfo{Name: "p", Namespace: "demo", ServiceAccount: "app"}}}}, pod.File())
	send(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}}, nil)

	waitUntil(t, func() bool { code, _ := httpGet(t, "http://"+cfg.ReadinessAddr+"/healthz/ready"); return code == 200 })
	waitUntil(t, func() bool {
		_, body := httpGet(t, "http://"+cfg.AdminAddr+"/config_dump")
		return strings.Contains(body, `"state": "Available"`)
	})
	_, body := httpGet(t, "http://"+cfg.AdminAddr+"/config_dump")
	var dump struct {
		Workloads     []map[string]any `json:"workloads"`
		WorkloadState []map[string]any `json:"workloadState"`
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatal(err)
	}
	if len(dump.Workloads) != 1 || dump.Workloads[0]["uid"] != "c//Pod/demo/p" || len(dump.WorkloadState) != 1 {
		t.Errorf("dump: %s", body)
	}
	c, err := pod.Dial(actx, nil, "tcp4", "127.0.0.1:15008")
	if err != nil {
		t.Fatalf("pod's HBONE listener: %v", err)
	}
	_ = c.Close()
	if _, body := httpGet(t, "http://"+cfg.MetricsAddr+"/metrics"); !strings.Contains(body, `istio_xds_message_total{url="type.googleapis.com/istio.workload.Address"}`) {
		t.Errorf("xds message metric missing")
	}

	fake.mu.Lock()
	defer fake.mu.Unlock()
	if !strings.HasPrefix(fake.nodeID, "ztunnel~10.0.0.5~ztunnel-abc.weft-system~") {
		t.Errorf("node id %q", fake.nodeID)
	}
	for _, tok := range fake.tokens {
		if tok != "Bearer node-token" {
			t.Errorf("token %q", tok)
		}
	}
	if len(fake.tokens) < 2 {
		t.Errorf("tokens seen: %v", fake.tokens)
	}
	if len(fake.impersonated) == 0 || fake.impersonated[0] != "spiffe://cluster.local/ns/demo/sa/app" {
		t.Errorf("impersonated %v", fake.impersonated)
	}
	if fake.acks < 2 || fake.nacks != 0 {
		t.Errorf("acks %d nacks %d", fake.acks, fake.nacks)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in time")
}
