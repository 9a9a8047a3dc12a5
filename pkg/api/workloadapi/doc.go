// Package workloadapi is the generated Go code for istio.workload: the
// Address, Workload and Service resources of workload discovery (WDS).
package workloadapi
