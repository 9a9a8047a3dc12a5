package iptables

import (
	"errors"
	"fmt"
)

// InPod installs and removes one pod's capture through the given backends,
// in the network namespace the backends act on (the caller's thread's).
type InPod struct {
	Config Config
	Tables Backend
	Routes Routes
}

// Apply installs routing first, then the rules, so that capture never
// starts before replies can be routed. Idempotent.
func (p InPod) Apply() error {
	if err := p.Routes.Ensure(); err != nil {
		return fmt.Errorf("install pod routing: %w", err)
	}
	if err := Apply(p.Tables, InPodRuleSet(p.Config)); err != nil {
		return fmt.Errorf("install pod rules: %w", err)
	}
	return nil
}

// Remove deletes the rules, then the routing. Idempotent.
func (p InPod) Remove() error {
	var errs []error
	// Remove with the DNS rules included: whatever an earlier run
	// installed, the owned chains go as a whole.
	if err := Remove(p.Tables, InPodRuleSet(Config{RedirectDNS: true})); err != nil {
		errs = append(errs, fmt.Errorf("remove pod rules: %w", err))
	}
	if err := p.Routes.Remove(); err != nil {
		errs = append(errs, fmt.Errorf("remove pod routing: %w", err))
	}
	return errors.Join(errs...)
}

// Installed reports whether any part of the capture is present.
func (p InPod) Installed() (bool, error) {
	ok, err := Installed(p.Tables, InPodRuleSet(p.Config))
	if err != nil || ok {
		return ok, err
	}
	return p.Routes.Installed()
}
