package xds

// Type URLs of the resources Weft serves over delta ADS.
const (
	// AddressType is the type URL of istio.workload.Address (workloads and
	// services).
	AddressType = "type.googleapis.com/istio.workload.Address"
	// AuthorizationType is the type URL of istio.security.Authorization.
	AuthorizationType = "type.googleapis.com/istio.security.Authorization"
)

// Wildcard is the resource name that subscribes to every resource of a type.
const Wildcard = "*"
