//go:build tools

// Package k8s pins the Kubernetes release whose commands the lab runs. It is
// a separate module so its dependency graph never touches Weft's; the blank
// imports below keep the commands' packages in go.mod/go.sum.
package k8s

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
