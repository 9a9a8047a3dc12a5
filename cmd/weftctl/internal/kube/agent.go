package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// AgentAdminPort is the CNI agent's localhost-only admin port, in the
// node's network namespace (the agent runs with hostNetwork).
const AgentAdminPort = 15016

// AgentPodsPath is the agent's report of the pods it holds, each with a
// live check of its redirect rules.
const AgentPodsPath = "/debug/pods"

// AgentReport is the CNI agent's GET /debug/pods.
type AgentReport struct {
	Node              string     `json:"node"`
	RuleCheckInterval string     `json:"ruleCheckInterval"`
	Pods              []AgentPod `json:"pods"`
}

// AgentPod is one pod the agent holds.
type AgentPod struct {
	Namespace    string     `json:"namespace"`
	Name         string     `json:"name"`
	UID          string     `json:"uid"`
	IPs          []string   `json:"ips,omitempty"`
	ZtunnelAcked bool       `json:"ztunnelAcked"`
	Rules        RuleCheck  `json:"rules"`
	Repairs      int        `json:"repairs"`
	LastRepair   *time.Time `json:"lastRepair,omitempty"`
	LastDrift    []string   `json:"lastDrift,omitempty"`
}

// RuleCheck is the agent's comparison of a pod's live redirect rules with
// the expected set, made in the pod's network namespace when asked.
type RuleCheck struct {
	InPlace bool     `json:"inPlace"`
	Drift   []string `json:"drift,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Find returns the report's entry for namespace/name, or nil.
func (r *AgentReport) Find(namespace, name string) *AgentPod {
	if r == nil {
		return nil
	}
	for i := range r.Pods {
		if r.Pods[i].Namespace == namespace && r.Pods[i].Name == name {
			return &r.Pods[i]
		}
	}
	return nil
}

// AgentPods asks the CNI agent pod namespace/pod for its held pods.
func AgentPods(ctx context.Context, h PodHTTP, namespace, pod string) (*AgentReport, error) {
	b, err := h.Get(ctx, namespace, pod, AgentAdminPort, AgentPodsPath)
	if err != nil {
		return nil, fmt.Errorf("ask CNI agent %s for its pods: %w", pod, err)
	}
	var r AgentReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode CNI agent %s's %s: %w", pod, AgentPodsPath, err)
	}
	return &r, nil
}
