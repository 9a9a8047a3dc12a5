package agentapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Defaults shared by the installer, the plugin and the agent.
const (
	DefaultSocket         = "/var/run/weft/cni-agent.sock"
	DefaultEnrollmentFile = "/var/run/weft/enrollment.json"
)

// HTTP paths served by the agent on its unix socket.
const (
	PathAdd    = "/v1/cni/add"
	PathDel    = "/v1/cni/del"
	PathCheck  = "/v1/cni/check"
	PathHealth = "/v1/healthz"
)

// PodRequest describes a CNI invocation for one pod.
type PodRequest struct {
	ContainerID  string   `json:"containerID"`
	Netns        string   `json:"netns"`
	IfName       string   `json:"ifName"`
	PodName      string   `json:"podName"`
	PodNamespace string   `json:"podNamespace"`
	PodUID       string   `json:"podUID,omitempty"`
	IPs          []string `json:"ips,omitempty"`
}

// Validate checks the fields every request needs.
func (r PodRequest) Validate() error {
	switch {
	case r.PodName == "" || r.PodNamespace == "":
		return errors.New("pod name and namespace are required")
	case r.ContainerID == "":
		return errors.New("container id is required")
	}
	return nil
}

// AddResponse answers Add.
type AddResponse struct {
	// Enrolled is true when the pod is in the mesh and its capture is in
	// place and acknowledged by ztunnel.
	Enrolled bool `json:"enrolled"`
	// Message explains the decision, for the plugin's log.
	Message string `json:"message,omitempty"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Enrollment is the content of the enrollment file.
type Enrollment struct {
	// Namespaces enrolled by label (istio.io/dataplane-mode=ambient),
	// sorted.
	Namespaces []string  `json:"namespaces"`
	Updated    time.Time `json:"updated"`
}

// NamespaceEnrolled reports whether ns is listed.
func (e *Enrollment) NamespaceEnrolled(ns string) bool {
	return e != nil && slices.Contains(e.Namespaces, ns)
}

// ReadEnrollment reads the enrollment file. A missing file returns an error
// wrapping os.ErrNotExist.
func ReadEnrollment(path string) (*Enrollment, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read enrollment file: %w", err)
	}
	var e Enrollment
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("parse enrollment file %s: %w", path, err)
	}
	return &e, nil
}

// WriteEnrollment replaces the enrollment file atomically.
func WriteEnrollment(path string, e *Enrollment) error {
	ns := slices.Clone(e.Namespaces)
	slices.Sort(ns)
	out := Enrollment{Namespaces: slices.Compact(ns), Updated: e.Updated}
	if out.Namespaces == nil {
		out.Namespaces = []string{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode enrollment: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create enrollment dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".enrollment-*")
	if err != nil {
		return fmt.Errorf("write enrollment file: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write enrollment file: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write enrollment file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write enrollment file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace enrollment file: %w", err)
	}
	return nil
}
