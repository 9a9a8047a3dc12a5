package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/pkg/exepages"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/log"
)

// Config is the waypoint's validated configuration.
type Config struct {
	// XDSAddress is istiod-lite's delta ADS address (host:port);
	// XDSPlaintext connects without TLS.
	XDSAddress   string
	XDSPlaintext bool
	// CAAddress is the CA's address (host:port, TLS).
	CAAddress string
	// RootCertFile verifies istiod-lite's serving certificate.
	RootCertFile string
	// TokenFile is the projected service-account token (audience istio-ca).
	TokenFile string
	// ClusterID, TrustDomain, Network and DomainSuffix describe the mesh.
	ClusterID, TrustDomain, Network, DomainSuffix string
	// PodName, PodNamespace, PodIP, NodeName and ServiceAccount identify
	// this instance (downward API).
	PodName, PodNamespace, NodeName, ServiceAccount string
	PodIP                                           netip.Addr
	// GatewayName is the waypoint's Gateway (in PodNamespace).
	GatewayName string
	// HBONEAddr, AdminAddr (localhost only), MetricsAddr and ReadinessAddr
	// are the listen addresses.
	HBONEAddr, AdminAddr, MetricsAddr, ReadinessAddr string
	// DrainTimeout bounds the graceful drain on shutdown.
	DrainTimeout time.Duration
	// ConnectTimeout bounds opening an upstream tunnel.
	ConnectTimeout time.Duration
	// SniffTimeout bounds waiting for a client's first bytes on a port with
	// no declared protocol before treating it as TCP.
	SniffTimeout time.Duration
	// OTLPEndpoint, when set, exports request spans to this OTLP/gRPC
	// collector (host:port); OTLPInsecure sends them without TLS.
	OTLPEndpoint string
	OTLPInsecure bool
	// AccessLog writes one access-log record per request and TCP
	// connection (component "access", level info, so the admin log-level
	// endpoint can also silence it at run time). On by default; in the
	// JSON log format it is encoded without slog and written in batches
	// (a record waits at most 100 ms), at a small cost per request.
	AccessLog bool
	// ReleasePagesAfter is how long after readiness, and after the last
	// change of the L7 configuration, the waypoint drops its mappings of
	// the executable's pages (pkg/exepages); 0 disables it.
	ReleasePagesAfter time.Duration
	// Log configures logging; Log.Output defaults to stderr.
	Log log.Options
}

// Defaults returns the configuration a waypoint Deployment starts from.
func Defaults() Config {
	return Config{
		XDSAddress: "istiod-lite.weft-system.svc:15012", CAAddress: "istiod-lite.weft-system.svc:15012",
		RootCertFile: "/var/run/secrets/istio/root-cert.pem", TokenFile: "/var/run/secrets/tokens/istio-token",
		ClusterID: "Kubernetes", TrustDomain: identity.DefaultTrustDomain, DomainSuffix: "cluster.local",
		HBONEAddr: ":15008", AdminAddr: "127.0.0.1:15000", MetricsAddr: ":15020", ReadinessAddr: ":15021",
		DrainTimeout: 30 * time.Second, ConnectTimeout: 5 * time.Second, SniffTimeout: time.Second,
		AccessLog: true, ReleasePagesAfter: exepages.DefaultAfter,
	}
}

// Identity is the waypoint's SPIFFE identity.
func (c Config) Identity() (identity.ID, error) {
	return identity.NewID(c.TrustDomain, c.PodNamespace, c.ServiceAccount)
}

// Validate reports the first problem with c, naming the setting.
func (c Config) Validate() error {
	for _, hp := range [][2]string{{"xds-address", c.XDSAddress}, {"ca-address", c.CAAddress},
		{"hbone-address", c.HBONEAddr}, {"admin-address", c.AdminAddr}, {"metrics-address", c.MetricsAddr},
		{"readiness-address", c.ReadinessAddr}} {
		if _, _, err := net.SplitHostPort(hp[1]); err != nil {
			return fmt.Errorf("%s %q: want host:port: %w", hp[0], hp[1], err)
		}
	}
	if host, _, _ := net.SplitHostPort(c.AdminAddr); host != "127.0.0.1" && host != "::1" && host != "localhost" {
		return fmt.Errorf("admin-address %q: the admin server must listen on localhost", c.AdminAddr)
	}
	switch {
	case c.TokenFile == "":
		return errors.New("token-file: required (projected token with audience istio-ca)")
	case c.RootCertFile == "":
		return errors.New("root-cert: required to verify istiod-lite")
	case c.PodNamespace == "":
		return errors.New("pod-namespace (POD_NAMESPACE): required")
	case c.ServiceAccount == "":
		return errors.New("service-account (SERVICE_ACCOUNT): required, it is the waypoint's identity")
	case c.GatewayName == "":
		return errors.New("gateway-name (GATEWAY_NAME): required")
	case c.TrustDomain == "" || c.DomainSuffix == "":
		return errors.New("trust-domain and domain-suffix: required")
	case c.DrainTimeout <= 0 || c.ConnectTimeout <= 0 || c.SniffTimeout <= 0:
		return errors.New("drain-timeout, connect-timeout and sniff-timeout: must be positive")
	case c.ReleasePagesAfter < 0:
		return errors.New("release-pages-after: must not be negative (0 disables)")
	}
	if c.OTLPEndpoint != "" {
		if _, _, err := net.SplitHostPort(c.OTLPEndpoint); err != nil {
			return fmt.Errorf("otlp-endpoint %q: want host:port: %w", c.OTLPEndpoint, err)
		}
	}
	if _, err := c.Identity(); err != nil {
		return fmt.Errorf("waypoint identity: %w", err)
	}
	return nil
}

// ServiceKey is the waypoint Service's discovery key,
// "<namespace>/<gateway>.<namespace>.svc.<domain suffix>".
func (c Config) ServiceKey() string {
	return c.PodNamespace + "/" + c.GatewayName + "." + c.PodNamespace + ".svc." + c.DomainSuffix
}
