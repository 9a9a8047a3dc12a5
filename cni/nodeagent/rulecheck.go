package nodeagent

import (
	"context"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DefaultRuleCheckInterval is how often the agent compares every held
// pod's live redirect rules with the expected set and repairs drift.
const DefaultRuleCheckInterval = 30 * time.Second

// RuleCheck is one pod's rule check, as the admin endpoint reports it.
type RuleCheck struct {
	// InPlace is true when the pod's namespace holds exactly the rule set
	// and routing the agent installs.
	InPlace bool `json:"inPlace"`
	// Drift lists what differs ("nat/WEFT_PRERT: rule missing: ...");
	// empty when InPlace.
	Drift []string `json:"drift,omitempty"`
	// Error is set when the check itself failed (the netns could not be
	// entered, iptables failed).
	Error string `json:"error,omitempty"`
}

// PodStatus is one held pod in the admin endpoint's report.
type PodStatus struct {
	Namespace    string    `json:"namespace"`
	Name         string    `json:"name"`
	UID          string    `json:"uid"`
	IPs          []string  `json:"ips,omitempty"`
	ZtunnelAcked bool      `json:"ztunnelAcked"`
	Rules        RuleCheck `json:"rules"`
	// Repairs counts how often the periodic check found drift in this pod
	// and re-applied its rules; LastRepair and LastDrift say when and what.
	Repairs    int        `json:"repairs"`
	LastRepair *time.Time `json:"lastRepair,omitempty"`
	LastDrift  []string   `json:"lastDrift,omitempty"`
}

// PodsReport is what GET /debug/pods on the admin address answers.
type PodsReport struct {
	Node string `json:"node"`
	// RuleCheckInterval is how often drift is repaired.
	RuleCheckInterval string      `json:"ruleCheckInterval"`
	Pods              []PodStatus `json:"pods"`
}

// errPodBusy is the rule check of a pod being enrolled or removed.
const errPodBusy = "the pod is being enrolled or removed right now; ask again"

// checkRules compares the live rules of the pod held as uid with the
// expected set (under the pod's lock, so never during an enroll or
// unenroll, which it does not wait for: a busy pod reports errPodBusy) and,
// with repair, re-applies them if they drifted. It returns the live result
// (before any repair) and false if the pod is not held.
func (a *Agent) checkRules(uid string, repair bool) (RuleCheck, bool) {
	unlock, ok := a.podLocks.tryLock(uid)
	if !ok {
		return RuleCheck{Error: errPodBusy}, a.state(uid) != nil
	}
	defer unlock()
	st := a.state(uid)
	if st == nil {
		return RuleCheck{}, false
	}
	drift, err := a.rules.Check(st.ns)
	rc := RuleCheck{InPlace: err == nil && len(drift) == 0, Drift: drift}
	if err != nil {
		rc.Error = err.Error()
		return rc, true
	}
	if len(drift) == 0 || !repair {
		return rc, true
	}
	log := a.log.With("pod", st.namespace+"/"+st.name, "uid", uid)
	log.Warn("redirect rules drifted; re-applying", "drift", drift)
	a.metrics.ruleDrift.Inc()
	if err := a.rules.Apply(st.ns); err != nil {
		a.metrics.failure(reasonRules)
		log.Error("repair redirect rules", "err", err)
		a.eventf(st, corev1.EventTypeWarning, "RedirectRulesDrifted",
			"redirect rules in the pod's network namespace differ from the expected set and could not be repaired: %v (drift: %s)", err, strings.Join(drift, "; "))
		return rc, true
	}
	now := time.Now()
	a.mu.Lock()
	st.repairs++
	st.lastRepair = now
	st.lastDrift = drift
	a.mu.Unlock()
	a.eventf(st, corev1.EventTypeWarning, "RedirectRulesRepaired",
		"redirect rules in the pod's network namespace had drifted and were re-applied: %s", strings.Join(drift, "; "))
	return rc, true
}

// ruleCheckLoop checks and repairs every held pod's rules each interval
// until ctx is done.
func (a *Agent) ruleCheckLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, uid := range a.heldUIDs() {
			if ctx.Err() != nil {
				return
			}
			a.checkRules(uid, true)
		}
	}
}

func (a *Agent) heldUIDs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.pods))
	for uid := range a.pods {
		out = append(out, uid)
	}
	sort.Strings(out)
	return out
}

// podsReport checks every held pod's rules now (without repairing) and
// reports them, sorted by namespace and name.
func (a *Agent) podsReport() PodsReport {
	rep := PodsReport{Node: a.cfg.NodeName, RuleCheckInterval: a.cfg.RuleCheckInterval.String(), Pods: []PodStatus{}}
	for _, uid := range a.heldUIDs() {
		rc, ok := a.checkRules(uid, false)
		if !ok {
			continue
		}
		a.mu.Lock()
		st := a.pods[uid]
		if st == nil {
			a.mu.Unlock()
			continue
		}
		ps := PodStatus{
			Namespace: st.namespace, Name: st.name, UID: uid, IPs: append([]string(nil), st.ips...),
			ZtunnelAcked: st.acked, Rules: rc, Repairs: st.repairs, LastDrift: st.lastDrift,
		}
		if !st.lastRepair.IsZero() {
			t := st.lastRepair.UTC()
			ps.LastRepair = &t
		}
		a.mu.Unlock()
		rep.Pods = append(rep.Pods, ps)
	}
	sort.Slice(rep.Pods, func(i, j int) bool {
		if rep.Pods[i].Namespace != rep.Pods[j].Namespace {
			return rep.Pods[i].Namespace < rep.Pods[j].Namespace
		}
		return rep.Pods[i].Name < rep.Pods[j].Name
	})
	return rep
}
