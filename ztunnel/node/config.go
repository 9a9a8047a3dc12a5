package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/pkg/exepages"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/log"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/proxy"
	"github.com/weftmesh/weft/ztunnel/udp"
)

// Config is ztunnel's validated configuration.
type Config struct {
	// XDSAddress is istiod's delta ADS address (host:port).
	XDSAddress string
	// XDSPlaintext connects to XDSAddress without TLS (port 15010).
	XDSPlaintext bool
	// CAAddress is the CA's address (host:port, TLS).
	CAAddress string
	// RootCertFile verifies istiod's serving certificate for xDS and CA.
	RootCertFile string
	// TokenFile is the projected service-account token (audience istio-ca).
	TokenFile string
	// ClusterID, TrustDomain and Network describe the mesh.
	ClusterID, TrustDomain, Network string
	// NodeName, PodName, PodNamespace and InstanceIP identify this ztunnel
	// to the control plane.
	NodeName, PodName, PodNamespace string
	InstanceIP                      netip.Addr
	// ZDSSocket is the node agent's ZDS socket path.
	ZDSSocket string
	// AdminAddr (localhost only), MetricsAddr and ReadinessAddr are the
	// HTTP listen addresses.
	AdminAddr, MetricsAddr, ReadinessAddr string
	// DrainTimeout bounds the graceful drain on shutdown and on pod removal.
	DrainTimeout time.Duration
	// ConnectTimeout bounds upstream dials.
	ConnectTimeout time.Duration
	// PreserveSource connects to applications from the client's address.
	PreserveSource bool
	// OnDemandTimeout, when positive, asks the control plane for an unknown
	// destination address and waits this long before treating it as
	// outside the mesh.
	OnDemandTimeout time.Duration
	// MaxConnsPerPod caps each pod's concurrent proxied connections per
	// direction (outbound; inbound); MaxConnsPerNode caps them across all
	// pods. Connections over a cap are refused (proxy.Config).
	MaxConnsPerPod, MaxConnsPerNode int
	// QUIC serves HBONE over QUIC on each pod's UDP 15008 and dials it to
	// destinations whose workload advertises it (default on: the control
	// plane advertises QUIC only where the namespace setting asks for it).
	QUIC bool
	// UDPIdleTimeout ends an enrolled pod's UDP flow after this long
	// without traffic; UDPMaxFlowsPerPod caps each pod's UDP flows (both
	// directions). UDP is carried only with QUIC (ztunnel/udp).
	UDPIdleTimeout    time.Duration
	UDPMaxFlowsPerPod int
	// ReleasePagesAfter is how long after readiness, and after the last
	// pod enrollment, ztunnel drops its mappings of the executable's pages
	// (pkg/exepages); 0 disables it.
	ReleasePagesAfter time.Duration
	// Log configures logging; Log.Output defaults to stderr.
	Log log.Options
}

// Defaults returns the configuration Istio's ztunnel uses by default.
func Defaults() Config {
	return Config{
		XDSAddress: "istiod.istio-system.svc:15012", CAAddress: "istiod.istio-system.svc:15012",
		RootCertFile: "/var/run/secrets/istio/root-cert.pem", TokenFile: "/var/run/secrets/tokens/istio-token",
		ClusterID: "Kubernetes", TrustDomain: identity.DefaultTrustDomain, ZDSSocket: inpod.DefaultSocketPath,
		AdminAddr: "127.0.0.1:15000", MetricsAddr: ":15020", ReadinessAddr: ":15021",
		DrainTimeout: 30 * time.Second, ConnectTimeout: 5 * time.Second, PreserveSource: true, QUIC: true,
		PodNamespace:   "istio-system",
		MaxConnsPerPod: proxy.DefaultMaxConnsPerPod, MaxConnsPerNode: proxy.DefaultMaxConnsPerNode,
		UDPIdleTimeout: udp.DefaultIdleTimeout, UDPMaxFlowsPerPod: udp.DefaultMaxFlowsPerPod,
		ReleasePagesAfter: exepages.DefaultAfter,
	}
}

// Validate reports the first problem with c, naming the setting.
func (c Config) Validate() error {
	hostPort := func(name, v string) error {
		if _, _, err := net.SplitHostPort(v); err != nil {
			return fmt.Errorf("%s %q: want host:port: %w", name, v, err)
		}
		return nil
	}
	for _, hp := range [][2]string{{"xds-address", c.XDSAddress}, {"ca-address", c.CAAddress},
		{"admin-address", c.AdminAddr}, {"metrics-address", c.MetricsAddr}, {"readiness-address", c.ReadinessAddr}} {
		if err := hostPort(hp[0], hp[1]); err != nil {
			return err
		}
	}
	if host, _, _ := net.SplitHostPort(c.AdminAddr); host != "127.0.0.1" && host != "::1" && host != "localhost" {
		return fmt.Errorf("admin-address %q: the admin server must listen on localhost", c.AdminAddr)
	}
	if c.TokenFile == "" {
		return errors.New("token-file: required (projected token with audience istio-ca)")
	}
	if c.RootCertFile == "" {
		return errors.New("root-cert: required to verify istiod")
	}
	if c.NodeName == "" {
		return errors.New("node-name (NODE_NAME): required")
	}
	if c.ZDSSocket == "" {
		return errors.New("zds-socket: required")
	}
	if c.TrustDomain == "" {
		return errors.New("trust-domain: required")
	}
	if c.OnDemandTimeout < 0 {
		return errors.New("on-demand-timeout: must not be negative")
	}
	if c.ReleasePagesAfter < 0 {
		return errors.New("release-pages-after: must not be negative (0 disables)")
	}
	if c.UDPIdleTimeout <= 0 || c.UDPMaxFlowsPerPod <= 0 {
		return errors.New("udp-idle-timeout and udp-max-flows-per-pod: must be positive")
	}
	if c.MaxConnsPerPod <= 0 || c.MaxConnsPerNode <= 0 {
		return errors.New("max-connections-per-pod and max-connections-per-node: must be positive")
	}
	if c.DrainTimeout <= 0 || c.ConnectTimeout <= 0 {
		return errors.New("drain-timeout and connect-timeout: must be positive")
	}
	return nil
}
