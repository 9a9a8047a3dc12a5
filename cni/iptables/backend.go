package iptables

import (
	"errors"
	"fmt"
	"strings"
)

// Backend is the part of an iptables implementation the rule installer
// uses. *github.com/coreos/go-iptables/iptables.IPTables implements it;
// Recorder is the in-memory implementation for tests. A Backend acts on the
// network namespace of the thread that calls it.
type Backend interface {
	ChainExists(table, chain string) (bool, error)
	NewChain(table, chain string) error
	ClearChain(table, chain string) error
	ClearAndDeleteChain(table, chain string) error
	Exists(table, chain string, spec ...string) (bool, error)
	Append(table, chain string, spec ...string) error
	Insert(table, chain string, pos int, spec ...string) error
	DeleteIfExists(table, chain string, spec ...string) error
	// List returns the chain in `iptables -S` form: "-N CHAIN" for a
	// user chain (or "-P CHAIN POLICY" for a built-in one), then one
	// "-A CHAIN ..." line per rule.
	List(table, chain string) ([]string, error)
}

// Apply installs rs: it creates the owned chains, makes each hold exactly
// its rules (rewriting a chain only when its content differs, so applying
// an installed set changes nothing and never opens a gap in capture), and
// inserts each jump once. Apply is idempotent.
func Apply(b Backend, rs RuleSet) error {
	created := map[Chain]bool{}
	for _, c := range rs.Chains {
		isNew, err := ensureChain(b, c, rs.rulesFor(c))
		if err != nil {
			return err
		}
		created[c] = isNew
	}
	for _, j := range rs.Jumps {
		if created[Chain{j.Table, jumpTarget(j.Spec)}] {
			// No jump to a chain that did not exist can be there.
			if err := b.Insert(j.Table, j.Chain, 1, j.Spec...); err != nil {
				return fmt.Errorf("insert jump %s/%s %s: %w", j.Table, j.Chain, strings.Join(j.Spec, " "), err)
			}
			continue
		}
		ok, err := b.Exists(j.Table, j.Chain, j.Spec...)
		if err != nil {
			return fmt.Errorf("check jump %s/%s: %w", j.Table, j.Chain, err)
		}
		if ok {
			continue
		}
		if err := b.Insert(j.Table, j.Chain, 1, j.Spec...); err != nil {
			return fmt.Errorf("insert jump %s/%s %s: %w", j.Table, j.Chain, strings.Join(j.Spec, " "), err)
		}
	}
	return nil
}

// ensureChain makes chain c hold exactly rules and reports whether it had
// to create the chain.
func ensureChain(b Backend, c Chain, rules [][]string) (created bool, err error) {
	exists, err := b.ChainExists(c.Table, c.Name)
	if err != nil {
		return false, fmt.Errorf("check chain %s/%s: %w", c.Table, c.Name, err)
	}
	if exists {
		same, err := chainMatches(b, c, rules)
		if err != nil {
			return false, err
		}
		if same {
			return false, nil
		}
		if err := b.ClearChain(c.Table, c.Name); err != nil {
			return false, fmt.Errorf("flush chain %s/%s: %w", c.Table, c.Name, err)
		}
	} else if err := b.NewChain(c.Table, c.Name); err != nil {
		return false, fmt.Errorf("create chain %s/%s: %w", c.Table, c.Name, err)
	}
	for _, r := range rules {
		if err := b.Append(c.Table, c.Name, r...); err != nil {
			return false, fmt.Errorf("append to %s/%s %q: %w", c.Table, c.Name, strings.Join(r, " "), err)
		}
	}
	return !exists, nil
}

// chainMatches reports whether the chain holds exactly the given rules:
// same count and each present.
func chainMatches(b Backend, c Chain, rules [][]string) (bool, error) {
	lines, err := b.List(c.Table, c.Name)
	if err != nil {
		return false, fmt.Errorf("list chain %s/%s: %w", c.Table, c.Name, err)
	}
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			n++
		}
	}
	if n != len(rules) {
		return false, nil
	}
	for _, r := range rules {
		ok, err := b.Exists(c.Table, c.Name, r...)
		if err != nil {
			return false, fmt.Errorf("check rule in %s/%s: %w", c.Table, c.Name, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// Remove deletes rs: the jumps first, then the owned chains. Parts that are
// already gone are skipped, so Remove is idempotent.
func Remove(b Backend, rs RuleSet) error {
	var errs []error
	for _, j := range rs.Jumps {
		// Checking a jump to a missing chain is an error in iptables, and
		// such a jump cannot exist.
		if target := jumpTarget(j.Spec); target != "" {
			ok, err := b.ChainExists(j.Table, target)
			if err != nil {
				errs = append(errs, fmt.Errorf("check chain %s/%s: %w", j.Table, target, err))
				continue
			}
			if !ok {
				continue
			}
		}
		if err := b.DeleteIfExists(j.Table, j.Chain, j.Spec...); err != nil {
			errs = append(errs, fmt.Errorf("delete jump %s/%s: %w", j.Table, j.Chain, err))
		}
	}
	for _, c := range rs.Chains {
		exists, err := b.ChainExists(c.Table, c.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("check chain %s/%s: %w", c.Table, c.Name, err))
			continue
		}
		if !exists {
			continue
		}
		if err := b.ClearAndDeleteChain(c.Table, c.Name); err != nil {
			errs = append(errs, fmt.Errorf("delete chain %s/%s: %w", c.Table, c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Installed reports whether any owned chain of rs exists, that is whether
// an earlier Apply (possibly by a previous agent) left rules behind.
func Installed(b Backend, rs RuleSet) (bool, error) {
	for _, c := range rs.Chains {
		ok, err := b.ChainExists(c.Table, c.Name)
		if err != nil {
			return false, fmt.Errorf("check chain %s/%s: %w", c.Table, c.Name, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// jumpTarget returns the chain a "-j CHAIN" spec jumps to.
func jumpTarget(spec []string) string {
	for i := 0; i+1 < len(spec); i++ {
		if spec[i] == "-j" {
			return spec[i+1]
		}
	}
	return ""
}
