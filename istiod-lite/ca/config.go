package ca

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftmesh/weft/pkg/identity"
)

// Names of the Kubernetes objects the CA reads and writes, as in Istio.
const (
	// PluginSecretName is the Secret holding an operator-provided CA.
	PluginSecretName = "cacerts"
	// SelfSignedSecretName is the Secret holding the self-signed root.
	SelfSignedSecretName = "istio-ca-secret"
	// RootConfigMapName is the ConfigMap published in every namespace.
	RootConfigMapName = "istio-ca-root-cert"
	// RootConfigMapKey is the key of the root certificate in it.
	RootConfigMapKey = "root-cert.pem"
	// ImpersonatedIdentityKey is the request metadata field naming the
	// identity a node proxy asks for on behalf of a pod.
	ImpersonatedIdentityKey = "ImpersonatedIdentity"
	// DefaultAudience is the token audience the CA accepts.
	DefaultAudience = "istio-ca"
)

// Keys of the CA Secrets.
const (
	keyCACert    = "ca-cert.pem"
	keyCAKey     = "ca-key.pem"
	keyRootCert  = "root-cert.pem"
	keyCertChain = "cert-chain.pem"
)

// Config configures the CA. Zero fields take the defaults documented on them.
type Config struct {
	// Namespace is istiod-lite's namespace, where the CA Secrets live.
	// Default istio-system.
	Namespace string
	// TrustDomain is the only trust domain the CA signs for. Default
	// cluster.local.
	TrustDomain string
	// ClusterID, when set, must match the clusterid request metadata when
	// a caller sends it.
	ClusterID string
	// DefaultValidity applies when a request asks for none. Default 24h.
	DefaultValidity time.Duration
	// MaxValidity caps the validity a request may ask for; longer requests
	// are shortened to it. Default 7 days.
	MaxValidity time.Duration
	// RootValidity is the lifetime of a self-signed root. Default 10 years.
	RootValidity time.Duration
	// Audience is the token audience required. Default istio-ca.
	Audience string
	// ZtunnelServiceAccounts lists, as "namespace/name", the service
	// accounts allowed to impersonate pods on their own node. Default
	// <Namespace>/ztunnel.
	ZtunnelServiceAccounts []string
	// ServingDNSNames are the DNS names of istiod-lite's serving
	// certificate. Default istiod.<ns>.svc and its longer and shorter forms.
	ServingDNSNames []string
	// TokenCacheTTL is how long a successful token review is reused.
	// Default 30s.
	TokenCacheTTL time.Duration
	// Pods finds the pods on a node for impersonation checks; nil makes
	// the CA run its own pod informer.
	Pods PodLookup
	// ResyncPeriod is the informers' resync period. Default 10m.
	ResyncPeriod time.Duration
	// Registerer receives the CA's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Logger receives the CA's logs; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Namespace == "" {
		c.Namespace = "istio-system"
	}
	if c.TrustDomain == "" {
		c.TrustDomain = identity.DefaultTrustDomain
	}
	if _, err := identity.NewID(c.TrustDomain, "ns", "sa"); err != nil {
		return fmt.Errorf("trust domain %q: %w", c.TrustDomain, err)
	}
	if c.DefaultValidity <= 0 {
		c.DefaultValidity = 24 * time.Hour
	}
	if c.MaxValidity <= 0 {
		c.MaxValidity = 7 * 24 * time.Hour
	}
	if c.DefaultValidity > c.MaxValidity {
		return fmt.Errorf("default validity %s exceeds max validity %s", c.DefaultValidity, c.MaxValidity)
	}
	if c.RootValidity <= 0 {
		c.RootValidity = 10 * 365 * 24 * time.Hour
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.ZtunnelServiceAccounts == nil {
		c.ZtunnelServiceAccounts = []string{c.Namespace + "/ztunnel"}
	}
	for _, sa := range c.ZtunnelServiceAccounts {
		if ns, name, ok := strings.Cut(sa, "/"); !ok || ns == "" || name == "" {
			return fmt.Errorf("ztunnel service account %q: want namespace/name", sa)
		}
	}
	if len(c.ServingDNSNames) == 0 {
		c.ServingDNSNames = []string{
			"istiod." + c.Namespace + ".svc",
			"istiod." + c.Namespace + ".svc.cluster.local",
			"istiod." + c.Namespace,
			"istiod",
		}
	}
	if c.TokenCacheTTL < 0 {
		return errors.New("token cache ttl must not be negative")
	}
	if c.TokenCacheTTL == 0 {
		c.TokenCacheTTL = 30 * time.Second
	}
	if c.ResyncPeriod <= 0 {
		c.ResyncPeriod = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
