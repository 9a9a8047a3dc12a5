package crds

// Source is one module to take CRDs from.
type Source struct {
	// Module is the Go module path, e.g. "istio.io/api".
	Module string
	// Files are glob patterns (filepath.Glob syntax, slash-separated) relative to the module's
	// root, e.g. "config/crd/standard/*.yaml".
	Files []string
	// Groups, when non-empty, keeps only CRDs whose spec.group is listed.
	Groups []string
	// Kinds, when non-empty, keeps only CRDs whose spec.names.kind is
	// listed.
	Kinds []string
	// Output is the file name written into the output folder.
	Output string
}

// keeps reports whether a CRD of group and kind belongs to the source.
func (s Source) keeps(group, kind string) bool {
	return (len(s.Groups) == 0 || contains(s.Groups, group)) &&
		(len(s.Kinds) == 0 || contains(s.Kinds, kind))
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Output file names of the default sources; the kustomization in
// manifests/base/crds lists them. IstioOutput holds every Istio CRD Weft
// installs (security.istio.io and networking.istio.io alike); its name is
// kept so that existing kustomizations still find it.
const (
	IstioOutput      = "istio-security.yaml"
	GatewayAPIOutput = "gateway-api-standard.yaml"
)

// DefaultSources are the CRDs Weft installs: Istio's security.istio.io
// AuthorizationPolicy, PeerAuthentication and RequestAuthentication (the
// latter is accepted and stored so that policies written for Istio apply
// cleanly; ztunnel does not enforce it), Istio's networking.istio.io
// DestinationRule (its trafficPolicy configures waypoints' connection
// pools, outlier detection and load balancing), and every CRD of the
// Gateway API's standard channel (waypoints are Gateways of class
// istio-waypoint; HTTPRoute and GRPCRoute attach to them).
//
// The channel is standard, not experimental: HTTPRoute rules[].retry is
// experimental-only, and installing the experimental HTTPRoute CRD would
// let the API server store experimental fields that later releases may
// change or drop, and would conflict with a cluster that already runs the
// standard channel. Waypoint retries are configured with the documented
// weft.dev/retry-* route annotations instead; on a cluster where the user
// installed the experimental channel, rules[].retry is honoured too (see
// docs/waypoint-config.md).
func DefaultSources() []Source {
	return []Source{
		{
			Module: "istio.io/api",
			Files:  []string{"kubernetes/customresourcedefinitions.gen.yaml"},
			Groups: []string{"security.istio.io", "networking.istio.io"},
			Kinds:  []string{"AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "DestinationRule"},
			Output: IstioOutput,
		},
		{
			Module: "sigs.k8s.io/gateway-api",
			Files:  []string{"config/crd/standard/*.yaml"},
			Output: GatewayAPIOutput,
		},
	}
}
