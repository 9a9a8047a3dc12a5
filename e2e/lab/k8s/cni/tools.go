//go:build tools

// Package cni pins the reference CNI plugins (ptp, host-local, loopback)
// each lab node's conf dir points at.
package cni

import (
	_ "github.com/containernetworking/plugins/plugins/ipam/host-local"
	_ "github.com/containernetworking/plugins/plugins/main/loopback"
	_ "github.com/containernetworking/plugins/plugins/main/ptp"
)
