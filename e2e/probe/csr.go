package probe

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/caclient"
)

// CSRConfig configures one certificate request to the mesh CA.
type CSRConfig struct {
	// Address is the CA's host:port; ServerName the name its serving
	// certificate carries; RootFile the root that verifies it (PEM).
	Address, ServerName, RootFile string
	// TokenFile holds the bearer token presented.
	TokenFile string
	// Identity is the SPIFFE ID asked for.
	Identity string
	// Impersonate sends Identity as ImpersonatedIdentity, as a node
	// proxy asking on behalf of a pod does.
	Impersonate bool
	// Timeout bounds the request.
	Timeout time.Duration
	// OutCert and OutKey, when set, receive the issued chain and the key
	// (PEM), for an HBONE attempt with them.
	OutCert, OutKey string
}

// CSRResult reports a certificate request: Issued with the leaf's
// identity, or the CA's error.
type CSRResult struct {
	Issued bool   `json:"issued"`
	Leaf   string `json:"leaf,omitempty"`
	Err    string `json:"err,omitempty"`
}

// CSR asks the CA for a certificate. Refusals are reported in the result;
// the error return is for a bad configuration only.
func CSR(ctx context.Context, cfg CSRConfig) (CSRResult, error) {
	id, err := identity.ParseID(cfg.Identity)
	if err != nil {
		return CSRResult{}, err
	}
	if cfg.Address == "" || cfg.RootFile == "" || cfg.TokenFile == "" {
		return CSRResult{}, errors.New("csr: need an address, a root file and a token file")
	}
	if _, err := os.Stat(cfg.TokenFile); err != nil {
		return CSRResult{}, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	key, err := identity.GenerateKey()
	if err != nil {
		return CSRResult{}, err
	}
	csr, err := identity.NewCSR(key, id)
	if err != nil {
		return CSRResult{}, err
	}
	c, err := caclient.New(caclient.Config{
		Address: cfg.Address, ServerName: cfg.ServerName, RootCAFile: cfg.RootFile,
		TokenFile: cfg.TokenFile, Impersonate: cfg.Impersonate,
	})
	if err != nil {
		return CSRResult{}, err
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	chain, err := c.Fetch(ctx, id, csr, time.Hour)
	if err != nil {
		return CSRResult{Err: err.Error()}, nil
	}
	if cfg.OutCert != "" {
		keyPEM, err := identity.EncodeKey(key)
		if err != nil {
			return CSRResult{}, err
		}
		if err := os.WriteFile(cfg.OutCert, []byte(strings.Join(chain, "")), 0o600); err != nil {
			return CSRResult{}, err
		}
		if err := os.WriteFile(cfg.OutKey, keyPEM, 0o600); err != nil {
			return CSRResult{}, err
		}
	}
	res := CSRResult{Issued: true}
	if certs, err := identity.ParseCertificates([]byte(strings.Join(chain, ""))); err == nil && len(certs) > 0 {
		if leaf, err := identity.IDFromCertificate(certs[0]); err == nil {
			res.Leaf = leaf.String()
		}
	}
	return res, nil
}
