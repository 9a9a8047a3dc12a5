//go:build tools

// Package etcd pins the etcd release the lab's control plane runs. It is its
// own module because k8s.io/kubernetes requires a newer etcd server module.
package etcd

import _ "go.etcd.io/etcd/server/v3"
