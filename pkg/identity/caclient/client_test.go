package caclient

import (
	"context"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

// recordingCA signs every CSR and records what each request carried.
type recordingCA struct {
	pb.UnimplementedIstioCertificateServiceServer
	ca *identitytest.CA

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	auth, clusterID, impersonated string
	validity                      int64
}

func (r *recordingCA) CreateCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	first := func(k string) string {
		if v := md.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{
		auth: first("authorization"), clusterID: first("clusterid"),
		impersonated: req.GetMetadata().GetFields()[ImpersonatedIdentityKey].GetStringValue(),
		validity:     req.GetValidityDuration(),
	})
	r.mu.Unlock()
	if first("authorization") == "Bearer bad" {
		return nil, status.Error(codes.Unauthenticated, "token rejected")
	}
	now := time.Now()
	chain, err := r.ca.SignCSR([]byte(req.GetCsr()), now, now.Add(time.Duration(req.GetValidityDuration())*time.Second))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pb.IstioCertificateResponse{CertChain: chain}, nil
}

// TestFetch checks what goes on the wire. The fake server is plaintext
// (the dial option overrides the client's TLS) since the CA's TLS is
// covered by the CA's own tests.
func TestFetch(t *testing.T) {
	rec := &recordingCA{ca: identitytest.NewCA("test")}
	gs := grpc.NewServer()
	pb.RegisterIstioCertificateServiceServer(gs, rec)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{
		Address: ln.Addr().String(), RootCAs: x509.NewCertPool(), TokenFile: tokenFile,
		ClusterID: "Kubernetes", Impersonate: true,
		DialOptions: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	id := identity.MustParseID("spiffe://cluster.local/ns/demo/sa/app")
	key, _ := identity.GenerateKey()
	csr, _ := identity.NewCSR(key, id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chain, err := c.Fetch(ctx, id, csr, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 {
		t.Fatalf("chain of %d, want 2", len(chain))
	}
	// The token file is read again on each request.
	if err := os.WriteFile(tokenFile, []byte("bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = c.Fetch(ctx, id, csr, time.Hour)
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), id.String()) {
		t.Fatalf("Fetch with rejected token = %v", err)
	}

	want := []recorded{
		{auth: "Bearer first", clusterID: "Kubernetes", impersonated: id.String(), validity: 7200},
		{auth: "Bearer bad", clusterID: "Kubernetes", impersonated: id.String(), validity: 3600},
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) != len(want) {
		t.Fatalf("recorded %+v, want %+v", rec.reqs, want)
	}
	for i := range want {
		if rec.reqs[i] != want[i] {
			t.Errorf("request %d: %+v, want %+v", i, rec.reqs[i], want[i])
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no address": {TokenFile: "t", RootCAs: x509.NewCertPool()},
		"no token":   {Address: "ca:15012", RootCAs: x509.NewCertPool()},
		"no roots":   {Address: "ca:15012", TokenFile: "t"},
		"bad root":   {Address: "ca:15012", TokenFile: "t", RootCAFile: "/nonexistent/root.pem"},
		"no port":    {Address: "ca", TokenFile: "t", RootCAs: x509.NewCertPool()},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}
