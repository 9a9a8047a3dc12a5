package xds

import (
	"context"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc/credentials"
)

// TokenCredentials are the per-request credentials a proxy presents to
// istiod-lite: its projected service-account token (re-read on every
// call, so rotation is picked up) and the cluster id, as Istio's proxies
// send them.
type TokenCredentials struct {
	// File is the projected token (audience istio-ca).
	File string
	// ClusterID is sent as "clusterid" when set.
	ClusterID string
	// Secure refuses to send the token over a connection without TLS.
	Secure bool
}

var _ credentials.PerRPCCredentials = TokenCredentials{}

// GetRequestMetadata reads the token and returns the request metadata.
func (c TokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	b, err := os.ReadFile(c.File)
	if err != nil {
		return nil, fmt.Errorf("read token: %w", err)
	}
	md := map[string]string{"authorization": "Bearer " + strings.TrimSpace(string(b))}
	if c.ClusterID != "" {
		md["clusterid"] = c.ClusterID
	}
	return md, nil
}

// RequireTransportSecurity reports Secure.
func (c TokenCredentials) RequireTransportSecurity() bool { return c.Secure }
