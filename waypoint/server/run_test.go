package server

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
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weftmesh/weft/pkg/api/l7api"
	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/log"
	"github.com/weftmesh/weft/pkg/wds"
)

// fakeIstiod serves the CA RPC and delta ADS with fixed resources.
type fakeIstiod struct {
	pb.UnimplementedIstioCertificateServiceServer
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	ca        *identitytest.CA
	resources map[string][]*discoveryv3.Resource

	mu    sync.Mutex
	nodes []string
	nacks []string
}

func (f *fakeIstiod) CreateCertificate(_ context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	chain, err := f.ca.SignCSR([]byte(req.GetCsr()), time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		return nil, err
	}
	return &pb.IstioCertificateResponse{CertChain: chain}, nil
}

func (f *fakeIstiod) DeltaAggregatedResources(s discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	sent := map[string]bool{}
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		f.mu.Lock()
		if req.GetNode() != nil {
			f.nodes = append(f.nodes, req.GetNode().GetId())
		}
		if req.GetErrorDetail() != nil {
			f.nacks = append(f.nacks, req.GetErrorDetail().GetMessage())
		}
		f.mu.Unlock()
		if sent[req.GetTypeUrl()] {
			continue
		}
		sent[req.GetTypeUrl()] = true
		if err := s.Send(&discoveryv3.DeltaDiscoveryResponse{TypeUrl: req.GetTypeUrl(), Nonce: req.GetTypeUrl(),
			SystemVersionInfo: "1", Resources: f.resources[req.GetTypeUrl()]}); err != nil {
			return nil
		}
	}
}

// servingCert makes a self-signed certificate for 127.0.0.1.
func servingCert(t *testing.T) (tls.Certificate, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "istiod"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func freeAddr(t *testing.T) string {
	ln := listen(t)
	a := ln.Addr().String()
	_ = ln.Close()
	return a
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	cert, rootPEM := servingCert(t)
	rootFile, tokenFile := filepath.Join(dir, "root-cert.pem"), filepath.Join(dir, "token")
	if err := os.WriteFile(rootFile, rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("token"), 0o600); err != nil {
		t.Fatal(err)
	}
	echo := service("echo", echoVIP, 80, 8080, true, wl.AppProtocol_UNKNOWN)
	f := &fakeIstiod{ca: identitytest.NewCA("mesh"), resources: map[string][]*discoveryv3.Resource{
		wds.AddressType: {addressRes(t, "demo/"+echo.Hostname, &wl.Address{Type: &wl.Address_Service{Service: echo}})},
		l7api.RouteConfigType: {{Name: echo.Hostname, Version: "1", Resource: anyOf(t, &l7api.RouteConfig{
			Service: &l7api.ServiceRef{Namespace: "demo", Name: "echo", Hostname: "other.demo.svc.cluster.local"}})}},
	}}
	srv := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	pb.RegisterIstioCertificateServiceServer(srv, f)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, f)
	ln := listen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	cfg := Defaults()
	cfg.XDSAddress, cfg.CAAddress = ln.Addr().String(), ln.Addr().String()
	cfg.RootCertFile, cfg.TokenFile = rootFile, tokenFile
	cfg.PodName, cfg.PodNamespace, cfg.ServiceAccount, cfg.GatewayName = "waypoint-0", "demo", "waypoint", "waypoint"
	cfg.HBONEAddr, cfg.AdminAddr, cfg.MetricsAddr, cfg.ReadinessAddr = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cfg.DrainTimeout = time.Second
	cfg.Log = log.Options{Level: "error"}
	if os.Getenv("WAYPOINT_TEST_LOG") != "" {
		cfg.Log = log.Options{Level: "debug", Format: log.FormatText, Output: os.Stderr}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	get := func(addr, path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The certificate and discovery come in, the RouteConfig naming
	// another host is NACKed naming the field, and so the waypoint stays
	// unready: its L7 configuration never synced.
	var dump map[string]json.RawMessage
	var nacks, nodes string
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		nacks, nodes = strings.Join(f.nacks, "\n"), strings.Join(f.nodes, "\n")
		f.mu.Unlock()
		code, body := get(cfg.AdminAddr, "/config_dump")
		dump = nil
		if code == 200 {
			_ = json.Unmarshal([]byte(body), &dump)
		}
		if strings.Contains(nacks, "service.hostname") && strings.Contains(string(dump["certificates"]), "Available") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: nacks %q, config_dump %d %q", nacks, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get(cfg.ReadinessAddr, "/healthz/ready"); code != 503 || !strings.Contains(body, "l7") {
		t.Errorf("readiness with the l7 configuration rejected: %d %q", code, body)
	}
	if !strings.HasPrefix(nodes, "waypoint~~waypoint-0.demo~demo.svc.cluster.local") {
		t.Errorf("node ids %q", nodes)
	}
	for _, k := range []string{"services", "l7", "certificates", "xds", "upstream", "config"} {
		if _, ok := dump[k]; !ok {
			t.Errorf("config_dump lacks %q", k)
		}
	}
	if code, body := get(cfg.MetricsAddr, "/metrics"); code != 200 || !strings.Contains(body, "istio_xds_message_total") {
		t.Errorf("metrics: %d", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestRunReady(t *testing.T) {
	dir := t.TempDir()
	cert, rootPEM := servingCert(t)
	rootFile, tokenFile := filepath.Join(dir, "root-cert.pem"), filepath.Join(dir, "token")
	_ = os.WriteFile(rootFile, rootPEM, 0o600)
	_ = os.WriteFile(tokenFile, []byte("token"), 0o600)
	f := &fakeIstiod{ca: identitytest.NewCA("mesh"), resources: map[string][]*discoveryv3.Resource{}}
	srv := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	pb.RegisterIstioCertificateServiceServer(srv, f)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, f)
	ln := listen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	cfg := Defaults()
	cfg.XDSAddress, cfg.CAAddress = ln.Addr().String(), ln.Addr().String()
	cfg.RootCertFile, cfg.TokenFile = rootFile, tokenFile
	cfg.PodNamespace, cfg.ServiceAccount, cfg.GatewayName = "demo", "waypoint", "waypoint"
	cfg.HBONEAddr, cfg.AdminAddr, cfg.MetricsAddr, cfg.ReadinessAddr = freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	cfg.DrainTimeout = time.Second
	cfg.Log = log.Options{Level: "error"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + cfg.ReadinessAddr + "/healthz/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 10s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
