package caclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
)

// ImpersonatedIdentityKey is the request metadata field a node proxy uses
// to ask for a pod's identity.
const ImpersonatedIdentityKey = "ImpersonatedIdentity"

// Config configures a Client.
type Config struct {
	// Address is the CA's host:port, e.g. istiod.istio-system.svc:15012.
	// Required.
	Address string
	// ServerName is the name the CA's serving certificate must carry;
	// empty means the host part of Address.
	ServerName string
	// RootCAs verifies the CA's serving certificate (the root published in
	// the istio-ca-root-cert ConfigMap). Required unless RootCAFile is set.
	RootCAs *x509.CertPool
	// RootCAFile is a PEM file to load RootCAs from.
	RootCAFile string
	// TokenFile holds the bearer token (a projected token for audience
	// istio-ca). It is read on every request, so kubelet's rotation of it
	// is picked up. Required unless Token is set.
	TokenFile string
	// Token returns the bearer token; it overrides TokenFile (tests).
	Token func() (string, error)
	// ClusterID is sent as the clusterid metadata when non-empty.
	ClusterID string
	// Impersonate sends the requested identity as ImpersonatedIdentity in
	// the request metadata; set it in ztunnel, which asks on behalf of pods.
	Impersonate bool
	// DialOptions are appended to the client's own (tests use a bufconn
	// dialer).
	DialOptions []grpc.DialOption
}

// Client calls CreateCertificate. It is safe for concurrent use.
type Client struct {
	cfg  Config
	conn *grpc.ClientConn
	rpc  pb.IstioCertificateServiceClient

	closeOnce sync.Once
	closeErr  error
}

var _ certmgr.Fetcher = (*Client)(nil)

// New returns a Client; it connects lazily on the first request.
func New(cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("ca client: Address is required")
	}
	if cfg.Token == nil {
		if cfg.TokenFile == "" {
			return nil, errors.New("ca client: TokenFile is required")
		}
		file := cfg.TokenFile
		cfg.Token = func() (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", fmt.Errorf("read token: %w", err)
			}
			return strings.TrimSpace(string(b)), nil
		}
	}
	roots := cfg.RootCAs
	if roots == nil {
		if cfg.RootCAFile == "" {
			return nil, errors.New("ca client: RootCAs or RootCAFile is required")
		}
		data, err := os.ReadFile(cfg.RootCAFile)
		if err != nil {
			return nil, fmt.Errorf("ca client: read root: %w", err)
		}
		certs, err := identity.ParseCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("ca client: root %s: %w", cfg.RootCAFile, err)
		}
		roots = x509.NewCertPool()
		for _, c := range certs {
			roots.AddCert(c)
		}
	}
	serverName := cfg.ServerName
	if serverName == "" {
		host, _, err := net.SplitHostPort(cfg.Address)
		if err != nil {
			return nil, fmt.Errorf("ca client: address %q: %w", cfg.Address, err)
		}
		serverName = host
	}
	creds := credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("ca client: %w", err)
	}
	return &Client{cfg: cfg, conn: conn, rpc: pb.NewIstioCertificateServiceClient(conn)}, nil
}

// Fetch sends csrPEM for id and returns the chain, leaf first and root
// last. Errors keep the gRPC status, whose message names the problem.
func (c *Client) Fetch(ctx context.Context, id identity.ID, csrPEM []byte, validity time.Duration) ([]string, error) {
	token, err := c.cfg.Token()
	if err != nil {
		return nil, err
	}
	md := metadata.Pairs("authorization", "Bearer "+token)
	if c.cfg.ClusterID != "" {
		md.Set("clusterid", c.cfg.ClusterID)
	}
	req := &pb.IstioCertificateRequest{Csr: string(csrPEM), ValidityDuration: int64(validity / time.Second)}
	if c.cfg.Impersonate {
		req.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			ImpersonatedIdentityKey: structpb.NewStringValue(id.String()),
		}}
	}
	resp, err := c.rpc.CreateCertificate(metadata.NewOutgoingContext(ctx, md), req)
	if err != nil {
		return nil, fmt.Errorf("create certificate for %s: %w", id, err)
	}
	if len(resp.GetCertChain()) == 0 {
		return nil, fmt.Errorf("create certificate for %s: empty certificate chain", id)
	}
	return resp.GetCertChain(), nil
}

// Close closes the connection. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.conn.Close() })
	return c.closeErr
}
