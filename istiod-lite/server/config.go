package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Config is istiod-lite's configuration.
type Config struct {
	// Kubeconfig is a kubeconfig path; empty means in-cluster.
	Kubeconfig string
	// XDSAddr serves xDS and the CA over TLS (":15012"); empty disables
	// both, which only tests want.
	XDSAddr string
	// PlaintextAddr serves xDS without TLS or authentication (":15010");
	// empty (the default) disables it.
	PlaintextAddr string
	// MonitoringAddr serves /ready, /healthz and /metrics (":15014").
	MonitoringAddr string
	// DebugAddr serves /debug/model and /debug/clients; it must be a
	// loopback address (default "127.0.0.1:9876"); empty disables.
	DebugAddr string

	// Namespace is istiod-lite's own namespace (CA Secrets).
	Namespace string
	// RootNamespace holds mesh-wide policies (default: Namespace).
	RootNamespace string
	TrustDomain   string
	ClusterID     string
	Network       string
	DomainSuffix  string
	// RequireRedirection: HBONE only once the node agent annotated the pod.
	RequireRedirection bool
	// HBONEQUIC advertises HBONE over QUIC mesh-wide (namespaces opt out
	// with weft.dev/hbone-transport=h2); off, only namespaces labelled
	// weft.dev/hbone-transport=quic get it. See docs/quic.md.
	HBONEQUIC bool

	// Debounce and MaxDebounce tune xDS pushes.
	Debounce    time.Duration
	MaxDebounce time.Duration
	// KubeQPS and KubeBurst limit API client requests.
	KubeQPS   float32
	KubeBurst int
	// ShutdownGrace bounds graceful shutdown.
	ShutdownGrace time.Duration
	// GCPercent is the garbage collector's steady-state target (Go's
	// GOGC), applied once the initial sync is done and only when the GOGC
	// environment variable is unset. 10 keeps the heap within a tenth of
	// what is live, for CPU that stays small because istiod-lite
	// allocates little between Kubernetes changes (at 5,000 pods and ten
	// clients: 34 MB anonymous instead of 41 MB with 25). 0 leaves Go's
	// default.
	GCPercent int
	// MemoryLimit is the Go runtime's soft memory limit in bytes, applied
	// only when the GOMEMLIMIT environment variable is unset:
	// MemoryLimitAuto (the default) takes MemoryLimitShare of the
	// container's memory limit, or none without one; MemoryLimitOff sets
	// none.
	MemoryLimit int64

	// WaypointImage is the waypoint proxies' image; empty derives it from
	// istiod-lite's own pod (PodName in Namespace): same registry and tag.
	WaypointImage string
	// PodName is istiod-lite's own pod name (downward API).
	PodName string

	// Log is the root logger; nil discards.
	Log *slog.Logger
}

// Defaults returns the production defaults.
func Defaults() Config {
	return Config{
		XDSAddr:            ":15012",
		MonitoringAddr:     ":15014",
		DebugAddr:          "127.0.0.1:9876",
		Namespace:          "istio-system",
		TrustDomain:        "cluster.local",
		ClusterID:          "Kubernetes",
		DomainSuffix:       "cluster.local",
		RequireRedirection: true,
		Debounce:           10 * time.Millisecond,
		MaxDebounce:        100 * time.Millisecond,
		KubeQPS:            50,
		KubeBurst:          100,
		ShutdownGrace:      10 * time.Second,
		GCPercent:          10,
	}
}

// Validate checks the configuration and fills derived defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("namespace is required"))
	}
	if c.RootNamespace == "" {
		c.RootNamespace = c.Namespace
	}
	if c.MonitoringAddr == "" {
		errs = append(errs, errors.New("monitoring address is required"))
	}
	if c.DebugAddr != "" {
		host, _, err := net.SplitHostPort(c.DebugAddr)
		ip := net.ParseIP(host)
		if err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			errs = append(errs, fmt.Errorf("debug address %q must be a loopback host:port", c.DebugAddr))
		}
	}
	if c.Debounce <= 0 || c.MaxDebounce < c.Debounce {
		errs = append(errs, fmt.Errorf("debounce %s / max %s: want 0 < debounce <= max", c.Debounce, c.MaxDebounce))
	}
	if c.MemoryLimit > 0 && c.MemoryLimit < MinMemoryLimit {
		errs = append(errs, fmt.Errorf("memory limit %s: want at least %s", FormatMemoryLimit(c.MemoryLimit), FormatMemoryLimit(MinMemoryLimit)))
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}
