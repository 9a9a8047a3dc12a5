package iptables

import (
	"fmt"
	"sync"

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
	good    *knownGood
}

// knownGood holds rule listings proved in place; pods share one rule set,
// so there are few. Safe for concurrent use.
type knownGood struct {
	mu  sync.Mutex
	set map[string]bool
}

// maxKnownGood bounds the set; it starts over when full.
const maxKnownGood = 16

func (k *knownGood) has(s string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.set[s]
}

func (k *knownGood) add(s string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.set == nil || len(k.set) >= maxKnownGood {
		k.set = map[string]bool{}
	}
	k.set[s] = true
}

// NewRedirector returns a Redirector using tables and routes inside each
// pod namespace (NewBackend and NetlinkRoutes in production).
func NewRedirector(cfg Config, tables Backend, routes Routes) *Redirector {
	return &Redirector{cfg: cfg, tables: tables, routes: routes, good: &knownGood{}}
}

// WithIPv6 returns a copy of r that also installs the IPv6 capture
// (InPodRuleSet6 through tables6, the IPv6 fwmark rule and local route
// through routes6: NewBackend6 and NetlinkRoutes{IPv6: true} in
// production).
func (r *Redirector) WithIPv6(tables6 Backend, routes6 Routes) *Redirector {
	c := *r
	c.tables6, c.routes6, c.good = tables6, routes6, &knownGood{}
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
// (empty: all in place). It only reads; Apply repairs. The rules' listing
// (one `iptables -S` per chain involved) is compared first with listings
// an earlier Check proved in place rule by rule; only a listing not seen
// before is checked rule by rule (about 30 iptables runs instead of 8).
func (r *Redirector) Check(ns *netns.NetNS) ([]string, error) {
	var drift []string
	err := ns.Do(func() error {
		p := r.inPod()
		print, perr := p.listing()
		if perr == nil && r.good.has(print) {
			var err error
			drift, err = p.routeDrift()
			return err
		}
		var err error
		drift, err = p.Drift()
		if err == nil && perr == nil && len(drift) == 0 {
			r.good.add(print)
		}
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
