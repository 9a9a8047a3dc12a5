// Package manifests holds what a user applies to install Weft — the
// kustomization in this folder (kubectl apply --server-side -k manifests/)
// and the sample apps in samples/ — and renders it the way kubectl does,
// for tests and tools that need the objects.
//
// The CRDs under base/crds/generated/ are not committed: `weft-build crds`
// (package manifests/crds) writes them before the kustomization is
// applied or rendered.
package manifests
