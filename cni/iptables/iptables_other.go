//go:build !linux

package iptables

import (
	"context"
	"errors"
)

var errNotSupported = errors.New("iptables rules are only supported on linux")

// DetectMode returns ModeNFT on this system.
func DetectMode(ctx context.Context) Mode { return ModeNFT }

// NewBackend is not supported on this system.
func NewBackend(mode Mode) (Backend, error) { return nil, errNotSupported }

// NewBackend6 is not supported on this system.
func NewBackend6(mode Mode) (Backend, error) { return nil, errNotSupported }

// NetlinkRoutes is not supported on this system.
type NetlinkRoutes struct {
	IPv6 bool
}

// Ensure is not supported on this system.
func (NetlinkRoutes) Ensure() error { return errNotSupported }

// Remove is not supported on this system.
func (NetlinkRoutes) Remove() error { return errNotSupported }

// Installed is not supported on this system.
func (NetlinkRoutes) Installed() (bool, error) { return false, errNotSupported }

// Drift is not supported on this system.
func (NetlinkRoutes) Drift() ([]string, error) { return nil, errNotSupported }
