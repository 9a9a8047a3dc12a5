// Package api holds Weft's wire protocols: the proto sources under proto/
// and the Go code generated from them in the sub-packages workloadapi
// (istio.workload), securityapi (istio.security) and zdsapi
// (istio.workload.zds), plus Weft's own L7 configuration for waypoints in
// l7api (weft.l7.v1). The istio packages match Istio's field numbers and
// package names, so Weft components interoperate with their Istio
// counterparts.
//
// Regenerate with `make generate` (buf and protoc-gen-go run as Go tools
// pinned in go.mod); never edit the generated files by hand.
package api

//go:generate go tool buf generate
