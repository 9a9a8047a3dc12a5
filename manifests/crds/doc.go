// Package crds assembles the CustomResourceDefinitions Weft installs from
// the Go modules the build pins, so that the CRD YAML is never copied into
// the repository: Istio's security APIs and DestinationRule from istio.io/api's
// kubernetes/customresourcedefinitions.gen.yaml and the Gateway API's
// standard channel from sigs.k8s.io/gateway-api's config/crd/standard.
//
// Each module is located in the module cache with `go list -m -json`, so
// the version is exactly the one go.mod requires. The selected documents
// are written verbatim, sorted by name, one file per source, into an output
// folder that the manifests' kustomization references (and that is not
// committed).
package crds
