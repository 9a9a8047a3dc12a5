package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftmesh/weft/pkg/netns"
)

// podRules installs and removes capture in a pod's namespace
// (*iptables.Redirector in production).
type podRules interface {
	Apply(ns *netns.NetNS) error
	Remove(ns *netns.NetNS) error
	// Check lists how the live rules in ns differ from the expected set.
	Check(ns *netns.NetNS) ([]string, error)
}

// probeRules manages the node-level probe SNAT (iptables.ProbeSNAT).
type probeRules interface {
	Ensure() error
	Add(podIP, uid string) error
	Delete(podIP, uid string) error
	List() (map[string]string, error)
}

// podState is an enrolled (or enrolling) pod.
type podState struct {
	uid, name, namespace, serviceAccount string
	ips                                  []string
	ns                                   *netns.NetNS
	acked                                bool
	annotated                            bool
	reportedNoZtunnel                    bool
	// Rule repairs by the periodic check (guarded by Agent.mu).
	repairs    int
	lastRepair time.Time
	lastDrift  []string
}

func (p *podState) workload() workload {
	return workload{UID: p.uid, Name: p.name, Namespace: p.namespace, ServiceAccount: p.serviceAccount, NetNS: p.ns}
}

// probeTargets pairs each of the pod's IPs with the probe SNAT of its
// family: IPv4 always, IPv6 only when the agent captures IPv6.
func (a *Agent) probeTargets(ips []string) []probeTarget {
	var out []probeTarget
	for _, s := range ips {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		switch addr = addr.Unmap(); {
		case addr.Is4():
			out = append(out, probeTarget{a.probes, addr.String()})
		case a.probes6 != nil:
			out = append(out, probeTarget{a.probes6, addr.String()})
		}
	}
	return out
}

type probeTarget struct {
	rules probeRules
	ip    string
}

// enroll puts pod in the mesh. nsPath is the pod's netns path from CNI
// ADD, or "" to find it by the pod's IPs. It is idempotent: an enrolled pod
// with the same namespace is left alone. source labels metrics (cni,
// reconcile or startup). With zdsAdd false the pod is only captured and
// held, for the ZDS snapshot to hand to ztunnel.
func (a *Agent) enroll(ctx context.Context, pod *corev1.Pod, nsPath string, ips []string, source string, zdsAdd bool) error {
	uid := string(pod.UID)
	unlock := a.podLocks.lock(uid)
	defer unlock()
	log := a.log.With("pod", pod.Namespace+"/"+pod.Name, "uid", uid, "source", source)

	var ns *netns.NetNS
	var err error
	if nsPath != "" {
		ns, err = a.open(nsPath)
		if err != nil && len(ips) > 0 {
			// The runtime's path may not be visible in the agent's mount
			// namespace; the pod's IP still leads to it.
			log.Info("netns path not usable; finding the pod's netns by ip", "path", nsPath, "err", err)
			ns, err = a.finder.Find(ips)
		}
	} else {
		ns, err = a.findNetns(pod.Namespace, pod.Name, uid, ips)
	}
	if err != nil {
		a.metrics.failure(reasonNetns)
		return fmt.Errorf("open netns of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}

	if cur := a.state(uid); cur != nil {
		same, _ := cur.ns.SameAs(ns)
		if same {
			_ = ns.Close()
			if a.isAcked(cur) {
				return a.annotate(ctx, cur)
			}
			return a.addToZtunnel(ctx, cur, log)
		}
		// A new sandbox for the same pod: forget the old one first.
		log.Info("pod has a new network namespace; re-enrolling")
		a.unenrollLocked(ctx, cur, false)
	}

	if err := a.rules.Apply(ns); err != nil {
		_ = ns.Close()
		a.metrics.failure(reasonRules)
		return fmt.Errorf("install redirect rules for pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	st := &podState{
		uid: uid, name: pod.Name, namespace: pod.Namespace,
		serviceAccount: pod.Spec.ServiceAccountName, ips: ips, ns: ns,
	}
	a.mu.Lock()
	a.pods[uid] = st
	a.mu.Unlock()
	for _, pt := range a.probeTargets(ips) {
		if err := pt.rules.Add(pt.ip, uid); err != nil {
			a.metrics.failure(reasonProbeSNAT)
			log.Error("probe snat", "ip", pt.ip, "err", err)
		}
	}
	log.Info("redirect rules installed", "ips", ips)
	if !zdsAdd {
		return nil
	}
	if err := a.addToZtunnel(ctx, st, log); err != nil {
		return err
	}
	a.metrics.enrollOps.WithLabelValues("enroll", source).Inc()
	return nil
}

// addToZtunnel sends the pod to ztunnel and, on ack, annotates it. The
// caller holds the pod's lock.
func (a *Agent) addToZtunnel(ctx context.Context, st *podState, log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) error {
	if a.zt.Connected() == 0 {
		a.eventf(st, corev1.EventTypeWarning, "ZtunnelNotConnected",
			"no ztunnel is connected to %s on this node; the pod's traffic is captured but not served until ztunnel connects", a.cfg.ZDSSocket)
	}
	err := a.zt.Add(ctx, st.workload())
	if err != nil {
		reason := reasonZtunnel
		if errors.Is(err, ErrNoZtunnel) {
			reason = reasonNoZtunnel
		}
		a.metrics.failure(reason)
		log.Warn("ztunnel did not take the pod", "err", err)
		return fmt.Errorf("hand pod %s/%s to ztunnel: %w", st.namespace, st.name, err)
	}
	a.markAcked(st.uid)
	log.Info("ztunnel acknowledged the pod")
	return a.annotate(ctx, st)
}

// markAcked records ztunnel's ack for uid (called directly or after a
// snapshot).
func (a *Agent) markAcked(uid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st := a.pods[uid]; st != nil && !st.acked {
		st.acked = true
		a.metrics.enrolled.Inc()
	}
}

// isAcked reads st.acked under the state lock.
func (a *Agent) isAcked(st *podState) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return st.acked
}

func (a *Agent) state(uid string) *podState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pods[uid]
}

// stateByName finds a held pod by namespace and name.
func (a *Agent) stateByName(namespace, name string) *podState {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, st := range a.pods {
		if st.namespace == namespace && st.name == name {
			return st
		}
	}
	return nil
}

// unenroll takes the pod with uid out of the mesh. Idempotent.
func (a *Agent) unenroll(ctx context.Context, uid string, source string) {
	unlock := a.podLocks.lock(uid)
	defer unlock()
	st := a.state(uid)
	if st == nil {
		return
	}
	a.unenrollLocked(ctx, st, true)
	a.metrics.enrollOps.WithLabelValues("unenroll", source).Inc()
}

func (a *Agent) unenrollLocked(ctx context.Context, st *podState, clearAnnotation bool) {
	log := a.log.With("pod", st.namespace+"/"+st.name, "uid", st.uid)
	a.zt.Del(ctx, st.uid)
	if err := a.rules.Remove(st.ns); err != nil {
		a.metrics.failure(reasonRemove)
		log.Warn("remove redirect rules", "err", err)
	}
	for _, pt := range a.probeTargets(st.ips) {
		if err := pt.rules.Delete(pt.ip, st.uid); err != nil {
			a.metrics.failure(reasonRemove)
			log.Warn("remove probe snat", "ip", pt.ip, "err", err)
		}
	}
	_ = st.ns.Close()
	a.mu.Lock()
	if st.acked {
		a.metrics.enrolled.Dec()
	}
	delete(a.pods, st.uid)
	a.mu.Unlock()
	if clearAnnotation {
		a.clearAnnotation(ctx, st.namespace, st.name)
	}
	log.Info("pod removed from the mesh")
}

// annotate marks the pod redirected through pods/status.
func (a *Agent) annotate(ctx context.Context, st *podState) error {
	if st.annotated {
		return nil
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, AnnotationRedirection, RedirectionEnabled)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := a.kube.CoreV1().Pods(st.namespace).Patch(ctx, st.name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil && !apierrors.IsNotFound(err) {
		a.metrics.failure(reasonAnnotate)
		return fmt.Errorf("annotate pod %s/%s: %w", st.namespace, st.name, err)
	}
	st.annotated = true
	return nil
}

// clearAnnotation removes the redirection annotation from a pod that still
// exists.
func (a *Agent) clearAnnotation(ctx context.Context, namespace, name string) {
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, AnnotationRedirection)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := a.kube.CoreV1().Pods(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil && !apierrors.IsNotFound(err) {
		a.metrics.failure(reasonAnnotate)
		a.log.Warn("clear redirection annotation", "pod", namespace+"/"+name, "err", err)
	}
}

func (a *Agent) eventf(st *podState, typ, reason, format string, args ...any) {
	ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: st.namespace, Name: st.name, UID: types.UID(st.uid)}
	a.events.Eventf(ref, typ, reason, format, args...)
}
