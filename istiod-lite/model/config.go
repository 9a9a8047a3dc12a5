package model

// Labels and annotations of the user-facing API.
const (
	LabelDataplaneMode          = "istio.io/dataplane-mode"
	LabelUseWaypoint            = "istio.io/use-waypoint"
	LabelUseWaypointNamespace   = "istio.io/use-waypoint-namespace"
	LabelWaypointFor            = "istio.io/waypoint-for"
	LabelGatewayName            = "gateway.networking.k8s.io/gateway-name"
	AnnotationRedirection       = "ambient.istio.io/redirection"
	AnnotationSidecarStatus     = "sidecar.istio.io/status"
	AnnotationDryRun            = "istio.io/dry-run"
	DataplaneModeAmbient        = "ambient"
	DataplaneModeNone           = "none"
	WaypointGatewayClass        = "istio-waypoint"
	StaticStrictPolicyName      = "istio_converted_static_strict"
	ConvertedPeerAuthnPrefix    = "converted_peer_authentication_"
	defaultHBONEPort            = 15008
	redirectionEnabled          = "enabled"
	waypointForService          = "service"
	waypointForWorkload         = "workload"
	waypointForAll              = "all"
	waypointForNone             = "none"
	labelServiceAccountFallback = "default"
)

// Config holds the mesh settings the translation depends on.
type Config struct {
	// ClusterID is used in workload uids (default "Kubernetes").
	ClusterID string
	// Network is the network of every address ("" is the default network).
	Network string
	// TrustDomain of workload identities (default "cluster.local").
	TrustDomain string
	// DomainSuffix of service hostnames (default "cluster.local").
	DomainSuffix string
	// RootNamespace holds mesh-wide policies (default "istio-system").
	RootNamespace string
	// RequireRedirection, when true, gives an enrolled pod HBONE only once
	// the node agent has annotated it ambient.istio.io/redirection=enabled,
	// as Istio does; when false, enrollment by label alone is enough.
	RequireRedirection bool
	// HBONEQUIC advertises HBONE over QUIC for the workloads of every
	// namespace that does not opt out (LabelHBONETransport=h2); without it
	// only namespaces labelled LabelHBONETransport=quic get it.
	HBONEQUIC bool
}

func (c Config) withDefaults() Config {
	if c.ClusterID == "" {
		c.ClusterID = "Kubernetes"
	}
	if c.TrustDomain == "" {
		c.TrustDomain = "cluster.local"
	}
	if c.DomainSuffix == "" {
		c.DomainSuffix = "cluster.local"
	}
	if c.RootNamespace == "" {
		c.RootNamespace = "istio-system"
	}
	return c
}
