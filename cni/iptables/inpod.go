package iptables

import (
	"errors"
	"fmt"
)

// InPod installs and removes one pod's capture through the given backends,
// in the network namespace the backends act on (the caller's thread's).
// Tables and Routes carry the IPv4 part; Tables6 and Routes6, when both
// set, the IPv6 part (InPodRuleSet6 and the IPv6 fwmark rule and local
// route), so a dual-stack pod's IPv6 traffic is captured too.
type InPod struct {
	Config  Config
	Tables  Backend
	Routes  Routes
	Tables6 Backend
	Routes6 Routes
}

func (p InPod) ipv6() bool { return p.Tables6 != nil && p.Routes6 != nil }

// Apply installs routing first, then the rules, so that capture never
// starts before replies can be routed; IPv4 first, then IPv6. Idempotent.
func (p InPod) Apply() error {
	if err := p.Routes.Ensure(); err != nil {
		return fmt.Errorf("install pod routing: %w", err)
	}
	if err := Apply(p.Tables, InPodRuleSet(p.Config)); err != nil {
		return fmt.Errorf("install pod rules: %w", err)
	}
	if !p.ipv6() {
		return nil
	}
	if err := p.Routes6.Ensure(); err != nil {
		return fmt.Errorf("install pod ipv6 routing: %w", err)
	}
	if err := Apply(p.Tables6, InPodRuleSet6(p.Config)); err != nil {
		return fmt.Errorf("install pod ipv6 rules: %w", err)
	}
	return nil
}

// Remove deletes the rules, then the routing. Idempotent.
func (p InPod) Remove() error {
	var errs []error
	// Remove with the DNS rules included: whatever an earlier run
	// installed, the owned chains go as a whole.
	if err := Remove(p.Tables, InPodRuleSet(Config{RedirectDNS: true, CaptureUDP: true})); err != nil {
		errs = append(errs, fmt.Errorf("remove pod rules: %w", err))
	}
	if err := p.Routes.Remove(); err != nil {
		errs = append(errs, fmt.Errorf("remove pod routing: %w", err))
	}
	if p.ipv6() {
		if err := Remove(p.Tables6, InPodRuleSet6(Config{RedirectDNS: true})); err != nil {
			errs = append(errs, fmt.Errorf("remove pod ipv6 rules: %w", err))
		}
		if err := p.Routes6.Remove(); err != nil {
			errs = append(errs, fmt.Errorf("remove pod ipv6 routing: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Installed reports whether any part of the capture is present.
func (p InPod) Installed() (bool, error) {
	ok, err := Installed(p.Tables, InPodRuleSet(p.Config))
	if err != nil || ok {
		return ok, err
	}
	if ok, err := p.Routes.Installed(); err != nil || ok {
		return ok, err
	}
	if !p.ipv6() {
		return false, nil
	}
	if ok, err := Installed(p.Tables6, InPodRuleSet6(p.Config)); err != nil || ok {
		return ok, err
	}
	return p.Routes6.Installed()
}
