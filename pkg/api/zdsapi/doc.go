// Package zdsapi is the generated Go code for istio.workload.zds: the
// messages the CNI node agent and ztunnel exchange over the ZDS socket.
package zdsapi
