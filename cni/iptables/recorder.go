package iptables

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

var builtinChains = map[string][]string{
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":    {"PREROUTING", "OUTPUT"},
}

// Recorder is an in-memory Backend for tests. Rules match by their exact
// argument list. It records every mutating call in Ops. Safe for concurrent
// use.
type Recorder struct {
	mu     sync.Mutex
	tables map[string]map[string][]string
	// Ops lists mutating calls, e.g. "-A nat WEFT_OUTPUT -j ACCEPT".
	Ops []string
	// Fail, if set, is consulted before each mutating call; a non-nil
	// return is that call's error.
	Fail func(op string) error
}

var _ Backend = (*Recorder)(nil)

// NewRecorder returns an empty Recorder with the built-in chains.
func NewRecorder() *Recorder {
	r := &Recorder{tables: map[string]map[string][]string{}}
	for t, chains := range builtinChains {
		r.tables[t] = map[string][]string{}
		for _, c := range chains {
			r.tables[t][c] = nil
		}
	}
	return r
}

func isBuiltin(table, chain string) bool {
	return slices.Contains(builtinChains[table], chain)
}

func (r *Recorder) op(format string, args ...any) error {
	op := fmt.Sprintf(format, args...)
	r.Ops = append(r.Ops, op)
	if r.Fail != nil {
		return r.Fail(op)
	}
	return nil
}

func (r *Recorder) chain(table, chain string) ([]string, bool) {
	t, ok := r.tables[table]
	if !ok {
		return nil, false
	}
	rules, ok := t[chain]
	return rules, ok
}

// ChainExists implements Backend.
func (r *Recorder) ChainExists(table, chain string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.chain(table, chain)
	return ok, nil
}

// NewChain implements Backend.
func (r *Recorder) NewChain(table, chain string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.op("-N %s %s", table, chain); err != nil {
		return err
	}
	if _, ok := r.chain(table, chain); ok {
		return fmt.Errorf("chain %s/%s already exists", table, chain)
	}
	if r.tables[table] == nil {
		r.tables[table] = map[string][]string{}
	}
	r.tables[table][chain] = nil
	return nil
}

// ClearChain implements Backend (creating the chain if missing, as
// go-iptables does).
func (r *Recorder) ClearChain(table, chain string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.op("-F %s %s", table, chain); err != nil {
		return err
	}
	if r.tables[table] == nil {
		r.tables[table] = map[string][]string{}
	}
	r.tables[table][chain] = nil
	return nil
}

// ClearAndDeleteChain implements Backend.
func (r *Recorder) ClearAndDeleteChain(table, chain string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.op("-X %s %s", table, chain); err != nil {
		return err
	}
	if isBuiltin(table, chain) {
		return fmt.Errorf("cannot delete built-in chain %s/%s", table, chain)
	}
	for c, rules := range r.tables[table] {
		for _, rule := range rules {
			if rule == "-j "+chain {
				return fmt.Errorf("chain %s/%s is still referenced from %s", table, chain, c)
			}
		}
	}
	delete(r.tables[table], chain)
	return nil
}

// Exists implements Backend.
func (r *Recorder) Exists(table, chain string, spec ...string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rules, ok := r.chain(table, chain)
	if !ok {
		return false, fmt.Errorf("no chain %s/%s", table, chain)
	}
	return slices.Contains(rules, strings.Join(spec, " ")), nil
}

// Append implements Backend.
func (r *Recorder) Append(table, chain string, spec ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(spec, " ")
	if err := r.op("-A %s %s %s", table, chain, s); err != nil {
		return err
	}
	rules, ok := r.chain(table, chain)
	if !ok {
		return fmt.Errorf("no chain %s/%s", table, chain)
	}
	r.tables[table][chain] = append(rules, s)
	return nil
}

// Insert implements Backend.
func (r *Recorder) Insert(table, chain string, pos int, spec ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(spec, " ")
	if err := r.op("-I %s %s %d %s", table, chain, pos, s); err != nil {
		return err
	}
	rules, ok := r.chain(table, chain)
	if !ok {
		return fmt.Errorf("no chain %s/%s", table, chain)
	}
	if pos < 1 || pos > len(rules)+1 {
		return fmt.Errorf("insert %s/%s: position %d out of range", table, chain, pos)
	}
	r.tables[table][chain] = slices.Insert(rules, pos-1, s)
	return nil
}

// DeleteIfExists implements Backend.
func (r *Recorder) DeleteIfExists(table, chain string, spec ...string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rules, ok := r.chain(table, chain)
	if !ok {
		return nil
	}
	s := strings.Join(spec, " ")
	i := slices.Index(rules, s)
	if i < 0 {
		return nil
	}
	if err := r.op("-D %s %s %s", table, chain, s); err != nil {
		return err
	}
	r.tables[table][chain] = slices.Delete(rules, i, i+1)
	return nil
}

// List implements Backend.
func (r *Recorder) List(table, chain string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rules, ok := r.chain(table, chain)
	if !ok {
		return nil, fmt.Errorf("no chain %s/%s", table, chain)
	}
	out := []string{"-N " + chain}
	if isBuiltin(table, chain) {
		out = []string{"-P " + chain + " ACCEPT"}
	}
	for _, s := range rules {
		out = append(out, "-A "+chain+" "+s)
	}
	return out, nil
}

// Dump renders the state like iptables-save (without counters), tables
// and user chains sorted, empty tables omitted. It is the golden-file
// format.
func (r *Recorder) Dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	tables := make([]string, 0, len(r.tables))
	for t := range r.tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		chains := r.tables[t]
		var user []string
		nrules := 0
		for c, rules := range chains {
			nrules += len(rules)
			if !isBuiltin(t, c) {
				user = append(user, c)
			}
		}
		if len(user) == 0 && nrules == 0 {
			continue
		}
		sort.Strings(user)
		fmt.Fprintf(&b, "*%s\n", t)
		for _, c := range user {
			fmt.Fprintf(&b, ":%s - [0:0]\n", c)
		}
		order := append(slices.Clone(builtinChains[t]), user...)
		for _, c := range order {
			for _, s := range chains[c] {
				fmt.Fprintf(&b, "-A %s %s\n", c, s)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}
