package iptables

import (
	"fmt"

	"github.com/weftmesh/weft/pkg/netns"
)

// Redirector installs and removes capture inside pods' network namespaces,
// entering each through pkg/netns. It is safe for concurrent use.
type Redirector struct {
	cfg     Config
	tables  Backend
	routes  Routes
	tables6 Backend
	routes6 Routes
}

// NewRedirector returns a Redirector using tables and routes inside each
// pod namespace (NewBackend and NetlinkRoutes in production).
func NewRedirector(cfg Config, tables Backend, routes Routes) *Redirector {
	return &Redirector{cfg: cfg, tables: tables, routes: routes}
}

// WithIPv6 returns a copy of r that also installs the IPv6 capture
// (InPodRuleSet6 through tables6, the IPv6 fwmark rule and local route
// through routes6: NewBackend6 and NetlinkRoutes{IPv6: true} in
// production).
func (r *Redirector) WithIPv6(tables6 Backend, routes6 Routes) *Redirector {
	c := *r
	c.tables6, c.routes6 = tables6, routes6
	return &c
}

func (r *Redirector) inPod() InPod {
	return InPod{Config: r.cfg, Tables: r.tables, Routes: r.routes, Tables6: r.tables6, Routes6: r.routes6}
}

// Apply installs the pod's capture in ns. Idempotent.
func (r *Redirector) Apply(ns *netns.NetNS) error {
	if err := ns.Do(r.inPod().Apply); err != nil {
		return fmt.Errorf("in netns %s: %w", ns.Path(), err)
	}
	return nil
}

// Remove deletes the pod's capture from ns. Idempotent.
func (r *Redirector) Remove(ns *netns.NetNS) error {
	if err := ns.Do(r.inPod().Remove); err != nil {
		return fmt.Errorf("in netns %s: %w", ns.Path(), err)
	}
	return nil
}

// Check lists what of the pod's capture in ns is not as Apply installs it
// (empty: all in place). It only reads; Apply repairs.
func (r *Redirector) Check(ns *netns.NetNS) ([]string, error) {
	var drift []string
	err := ns.Do(func() error {
		var err error
		drift, err = r.inPod().Drift()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("in netns %s: %w", ns.Path(), err)
	}
	return drift, nil
}

// Installed reports whether ns holds any part of the capture.
func (r *Redirector) Installed(ns *netns.NetNS) (bool, error) {
	var ok bool
	err := ns.Do(func() error {
		var err error
		ok, err = r.inPod().Installed()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("in netns %s: %w", ns.Path(), err)
	}
	return ok, nil
}
