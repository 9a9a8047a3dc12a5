package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Phases of a lab, as recorded in its state file.
const (
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseFailed   = "failed"
	PhaseStopping = "stopping"
)

// State is what a running lab records in <dir>/state.json for the CLI:
// who owns it, where its kubeconfig is, and its nodes and processes.
type State struct {
	Name          string
	Phase         string
	Error         string `json:",omitempty"`
	SupervisorPID int
	// SupervisorStart is the supervisor's start time (clock ticks since
	// boot), telling it apart from a later process with the same pid.
	SupervisorStart uint64
	Dir             string
	Kubeconfig      string
	APIServer       string
	// ClusterCIDR is the lab's pod range, unique among running labs.
	ClusterCIDR string `json:",omitempty"`
	Nodes       []NodeState
	PIDs        map[string]int // component -> process id
	StartedAt   time.Time
	// NodesReady is the time from the start of Up (binaries built) to
	// every node Ready.
	NodesReady time.Duration `json:",omitempty"`
}

// NodeState is one node's part of the State.
type NodeState struct {
	Name, IP, PodCIDR, Netns string
}

// StateDir is the state directory of the lab called name.
func StateDir(root, name string) string { return filepath.Join(LabsDir(root), name) }

// LabsDir holds one state directory per lab.
func LabsDir(root string) string { return filepath.Join(root, "_output", "lab") }

func stateFile(dir string) string { return filepath.Join(dir, "state.json") }

// ReadState reads the state of the lab whose state directory is dir.
func ReadState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(stateFile(dir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return s, fmt.Errorf("no lab state in %s: %w", dir, err)
		}
		return s, fmt.Errorf("read lab state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("parse lab state %s: %w", stateFile(dir), err)
	}
	return s, nil
}

// writeState replaces the state file atomically.
func writeState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode lab state: %w", err)
	}
	tmp := stateFile(dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if err := os.Rename(tmp, stateFile(dir)); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}

// ListLabs returns the names of labs on this machine: those with a state
// directory under root and those whose underlay or control-plane namespace
// is still there (a killed run of another checkout, for example).
func ListLabs(root string) ([]string, error) {
	seen := map[string]bool{}
	entries, err := os.ReadDir(LabsDir(root))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || ValidateName(e.Name()) != nil {
			continue
		}
		if _, err := os.Stat(stateFile(filepath.Join(LabsDir(root), e.Name()))); err == nil {
			seen[e.Name()] = true
		}
	}
	nsEntries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	for _, e := range nsEntries {
		for _, suffix := range []string{"-ul", "-cp"} {
			if n, ok := strings.CutSuffix(e.Name(), suffix); ok && ValidateName(n) == nil {
				seen[n] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}
