package diagnose

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/enroll"
	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
)

// Inputs are what the CLI gathered about one node; any may be missing.
type Inputs struct {
	Node    *corev1.Node
	Ztunnel *corev1.Pod
	Agent   *corev1.Pod
	// Pods are the pods Kubernetes runs on the node, with whether their
	// namespace is enrolled.
	Pods       []corev1.Pod
	EnrolledNS map[string]bool
	Dump       *zdump.Dump
	DumpErr    error
	// AgentPods is the CNI agent's report of the pods it holds, with a
	// live check of each one's redirect rules.
	AgentPods  *kube.AgentReport
	AgentErr   error
	Logs       []byte
	LogsErr    error
	Metrics    []byte
	MetricsErr error
	Now        time.Time
}

// Component is a pod's health.
type Component struct {
	Pod      string `json:"pod,omitempty"`
	Ready    bool   `json:"ready"`
	Restarts int32  `json:"restarts"`
	State    string `json:"state"`
}

// XDSType is one xDS type's progress.
type XDSType struct {
	Type      string `json:"type"`
	Version   string `json:"version"`
	Resources int    `json:"resources"`
	ACKs      uint64 `json:"acks"`
	NACKs     uint64 `json:"nacks"`
	LastNACK  string `json:"lastNack,omitempty"`
}

// PodRow compares one pod between Kubernetes and ztunnel.
type PodRow struct {
	Pod         string `json:"pod"`
	Kubernetes  bool   `json:"inKubernetes"`
	ShouldMesh  bool   `json:"shouldBeInMesh"`
	Redirection string `json:"redirection"`
	Ztunnel     bool   `json:"heldByZtunnel"`
	// Rules is the CNI agent's check of the pod's redirect rules: "in
	// place", "drifted", "not held" (by the agent), or "" (not checked).
	Rules      string   `json:"redirectRules,omitempty"`
	RulesDrift []string `json:"redirectRulesDrift,omitempty"`
	Problem    string   `json:"problem,omitempty"`
}

// Report is `weftctl node diagnose`.
type Report struct {
	Node          string             `json:"node"`
	NodeReady     bool               `json:"nodeReady"`
	Ztunnel       Component          `json:"ztunnel"`
	Agent         Component          `json:"cniAgent"`
	AdminError    string             `json:"adminError,omitempty"`
	XDSConnected  bool               `json:"xdsConnected"`
	XDS           []XDSType          `json:"xds"`
	Pods          []PodRow           `json:"pods"`
	RedirectRules string             `json:"redirectRules"`
	Certificates  []zdump.CertRow    `json:"certificates"`
	Failures      []FailureGroup     `json:"failures"`
	FailedByFlag  map[string]float64 `json:"failedByResponseFlag,omitempty"`
	TopTalkers    []Talker           `json:"topTalkers"`
	Problems      []string           `json:"problems"`
	Notes         []string           `json:"notes,omitempty"`
}

// RulesNotReported says why rules were not checked.
const RulesNotReported = "not checked: the CNI agent did not answer; the redirection annotation is shown instead"

// Per-pod rule states.
const (
	RulesInPlace = "in place"
	RulesDrifted = "drifted"
	RulesNotHeld = "not held"
)

func component(p *corev1.Pod) Component {
	if p == nil {
		return Component{State: "missing"}
	}
	c := Component{Pod: p.Name, State: string(p.Status.Phase)}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue && p.Status.Phase == corev1.PodRunning {
			c.Ready = true
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		c.Restarts += cs.RestartCount
		if w := cs.State.Waiting; w != nil {
			c.State = "waiting: " + w.Reason
		}
	}
	return c
}

// Diagnose builds the report from the inputs.
func Diagnose(in Inputs) Report {
	r := Report{Pods: []PodRow{}, Certificates: []zdump.CertRow{}, Failures: []FailureGroup{}, TopTalkers: []Talker{}, Problems: []string{}, XDS: []XDSType{}, RedirectRules: RulesNotReported}
	if in.Node != nil {
		r.Node = in.Node.Name
		for _, c := range in.Node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				r.NodeReady = true
			}
		}
		if !r.NodeReady {
			r.Problems = append(r.Problems, "node is not Ready")
		}
	}
	r.Ztunnel, r.Agent = component(in.Ztunnel), component(in.Agent)
	if !r.Ztunnel.Ready {
		r.Problems = append(r.Problems, "ztunnel is not ready ("+r.Ztunnel.State+")")
	}
	if !r.Agent.Ready {
		r.Problems = append(r.Problems, "CNI agent is not ready ("+r.Agent.State+"): new pods are not enrolled")
	}
	if in.DumpErr != nil {
		r.AdminError = in.DumpErr.Error()
		r.Problems = append(r.Problems, "ztunnel admin did not answer: "+in.DumpErr.Error())
	}
	d := in.Dump
	if d != nil {
		if d.XDS != nil {
			r.XDSConnected = d.XDS.Connected
			for t, ts := range d.XDS.Types {
				r.XDS = append(r.XDS, XDSType{Type: t, Version: ts.Version, Resources: ts.Resources, ACKs: ts.ACKs, NACKs: ts.NACKs, LastNACK: ts.LastNACK})
				if ts.LastNACK != "" {
					r.Problems = append(r.Problems, fmt.Sprintf("ztunnel rejected the last %s update: %s", t, ts.LastNACK))
				}
			}
			sort.Slice(r.XDS, func(i, j int) bool { return r.XDS[i].Type < r.XDS[j].Type })
		}
		if !r.XDSConnected {
			r.Problems = append(r.Problems, "ztunnel is not connected to istiod-lite")
		}
		for _, c := range zdump.CertRows(d.Certificates, in.Now) {
			if c.Type != "Leaf" {
				continue
			}
			r.Certificates = append(r.Certificates, c)
			if !c.Valid {
				r.Problems = append(r.Problems, fmt.Sprintf("no valid certificate for %s (%s)", c.Identity, c.State))
			}
		}
	}
	switch {
	case in.AgentPods != nil:
		r.RedirectRules = "checked in each pod's network namespace by the CNI agent"
		if in.AgentPods.RuleCheckInterval != "" {
			r.RedirectRules += ", which re-applies drifted rules every " + in.AgentPods.RuleCheckInterval
		}
	case in.AgentErr != nil:
		r.RedirectRules = RulesNotReported + " (" + in.AgentErr.Error() + ")"
	}
	r.Pods = comparePods(in, &r)
	if in.LogsErr != nil {
		r.Notes = append(r.Notes, "ztunnel logs unavailable: "+in.LogsErr.Error())
	}
	r.Failures, r.TopTalkers = FromAccessLog(in.Logs, 5)
	if r.Failures == nil {
		r.Failures = []FailureGroup{}
	}
	if r.TopTalkers == nil {
		r.TopTalkers = []Talker{}
	}
	if in.Metrics != nil {
		if m, err := FailedByFlag(in.Metrics); err == nil && len(m) > 0 {
			r.FailedByFlag = m
		}
	} else if in.MetricsErr != nil {
		r.Notes = append(r.Notes, "ztunnel metrics unavailable: "+in.MetricsErr.Error())
	}
	return r
}

func comparePods(in Inputs, r *Report) []PodRow {
	rows := map[string]*PodRow{}
	for i := range in.Pods {
		p := &in.Pods[i]
		if p.Spec.HostNetwork {
			continue
		}
		key := p.Namespace + "/" + p.Name
		should := in.EnrolledNS[p.Namespace] && enroll.InMesh(p) || p.Labels[enroll.DataplaneModeLabel] == enroll.DataplaneModeAmbient
		rows[key] = &PodRow{Pod: key, Kubernetes: true, ShouldMesh: should, Redirection: p.Annotations[enroll.RedirectionAnnotation]}
	}
	if in.Dump != nil {
		for _, s := range in.Dump.WorkloadState {
			key := s.Namespace + "/" + s.Name
			if rows[key] == nil {
				rows[key] = &PodRow{Pod: key}
			}
			rows[key].Ztunnel = true
		}
	}
	if in.AgentPods != nil {
		for key, row := range rows {
			if !row.Kubernetes || row.Redirection != enroll.RedirectionEnabled && !row.ShouldMesh {
				continue
			}
			ns, name, _ := strings.Cut(key, "/")
			ap := in.AgentPods.Find(ns, name)
			switch {
			case ap == nil:
				if row.Redirection == enroll.RedirectionEnabled {
					row.Rules = RulesNotHeld
				}
			case ap.Rules.Error != "":
				row.Rules = "check failed: " + ap.Rules.Error
			case ap.Rules.InPlace:
				row.Rules = RulesInPlace
			default:
				row.Rules, row.RulesDrift = RulesDrifted, ap.Rules.Drift
			}
		}
	}
	out := []PodRow{}
	for _, row := range rows {
		switch {
		case !row.Kubernetes:
			row.Problem = "held by ztunnel but Kubernetes runs no such pod on this node (stale ZDS entry)"
		case row.ShouldMesh && row.Redirection != enroll.RedirectionEnabled:
			row.Problem = "should be in the mesh but is not redirected (agent has not enrolled it)"
		case row.ShouldMesh && in.Dump != nil && !row.Ztunnel:
			row.Problem = "redirected but ztunnel does not hold it: its traffic is dropped"
		case row.Rules == RulesDrifted:
			row.Problem = "redirect rules differ from the expected set (the agent re-applies them): " + strings.Join(row.RulesDrift, "; ")
		case row.Rules == RulesNotHeld:
			row.Problem = "annotated but the CNI agent does not hold it: its rules are not managed"
		case !row.ShouldMesh && row.Ztunnel:
			row.Problem = "held by ztunnel but its namespace is no longer enrolled"
		}
		if !row.ShouldMesh && !row.Ztunnel && row.Redirection == "" {
			continue // not a mesh pod: nothing to show
		}
		if row.Problem != "" {
			r.Problems = append(r.Problems, row.Pod+": "+row.Problem)
		}
		out = append(out, *row)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod < out[j].Pod })
	sort.Strings(r.Problems)
	return out
}
