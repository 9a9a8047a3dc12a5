package nodeagent

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/weftmesh/weft/cni/agentapi"
)

// reconcileTimeout bounds one reconcile of a pod, including the wait for
// ztunnel's ack.
const reconcileTimeout = 10 * time.Second

func (a *Agent) enqueuePod(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	a.queue.Add(key)
}

// namespaceChanged re-evaluates every pod of the namespace on this node and
// rewrites the enrollment file.
func (a *Agent) namespaceChanged(obj any) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			ns, _ = tomb.Obj.(*corev1.Namespace)
		}
	}
	if ns == nil {
		return
	}
	if a.synced.Load() {
		a.writeEnrollment()
	}
	if a.podLister == nil {
		return
	}
	pods, err := a.podLister.Pods(ns.Name).List(labels.Everything())
	if err != nil {
		return
	}
	for _, p := range pods {
		a.queue.Add(p.Namespace + "/" + p.Name)
	}
}

// writeEnrollment records the enrolled namespaces for the plugin.
func (a *Agent) writeEnrollment() {
	all, err := a.nsLister.List(labels.Everything())
	if err != nil {
		a.log.Error("list namespaces", "err", err)
		return
	}
	var names []string
	for _, ns := range all {
		if namespaceEnrolled(ns) {
			names = append(names, ns.Name)
		}
	}
	if err := agentapi.WriteEnrollment(a.cfg.EnrollmentFile, &agentapi.Enrollment{Namespaces: names, Updated: time.Now().UTC()}); err != nil {
		a.log.Error("write enrollment file", "err", err)
	}
}

func (a *Agent) processNext(ctx context.Context) bool {
	key, shutdown := a.queue.Get()
	if shutdown {
		return false
	}
	defer a.queue.Done(key)
	rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	err := a.reconcile(rctx, key)
	cancel()
	if err != nil && ctx.Err() == nil {
		a.log.Warn("reconcile pod", "pod", key, "err", err)
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// namespace returns the pod's namespace object, or nil.
func (a *Agent) namespace(name string) *corev1.Namespace {
	ns, err := a.nsLister.Get(name)
	if err != nil {
		return nil
	}
	return ns
}

// reconcile brings one pod (namespace/name key) to its desired state.
func (a *Agent) reconcile(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := a.podLister.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		// Deleted: drop whatever we hold for it.
		a.paths.forget(namespace, name, "")
		if st := a.stateByName(namespace, name); st != nil {
			a.unenroll(ctx, st.uid, "reconcile")
		}
		return nil
	}
	if err != nil {
		return err
	}
	uid := string(pod.UID)
	held := a.state(uid)
	if stale := a.stateByName(namespace, name); stale != nil && stale.uid != uid {
		// Same name, new pod: the old one is gone.
		a.unenroll(ctx, stale.uid, "reconcile")
	}
	want := shouldEnroll(pod, a.namespace(namespace)) && pod.DeletionTimestamp == nil
	switch {
	case want && held == nil:
		if !podRunning(pod) {
			return nil // CNI ADD enrolls it, or a later update does
		}
		if a.zt.Connected() > 0 {
			return a.enroll(ctx, pod, "", podIPs(pod), "reconcile", true)
		}
		// Capture now; the snapshot hands the pod over when ztunnel
		// connects. Say so on the pod rather than wait silently.
		if err := a.enroll(ctx, pod, "", podIPs(pod), "reconcile", false); err != nil {
			return err
		}
		if st := a.state(uid); st != nil {
			a.eventf(st, corev1.EventTypeWarning, "ZtunnelNotConnected",
				"no ztunnel is connected to %s on this node; the pod's traffic is captured but not served until ztunnel connects", a.cfg.ZDSSocket)
		}
		return nil
	case want && !a.isAcked(held):
		if a.zt.Connected() == 0 {
			return nil // the snapshot on ztunnel's connection covers it
		}
		return a.enroll(ctx, pod, "", podIPs(pod), "reconcile", true)
	case want:
		unlock := a.podLocks.lock(uid)
		defer unlock()
		// held was read before the lock: a CNI DEL or a new sandbox may
		// have replaced it since. Annotate only the state now held, and
		// only once ztunnel acked it (its own enroll annotates it then).
		if cur := a.state(uid); cur != held || !a.isAcked(cur) {
			return nil
		}
		if pod.Annotations[AnnotationRedirection] == RedirectionEnabled {
			held.annotated = true
			return nil
		}
		held.annotated = false
		return a.annotate(ctx, held)
	case held != nil:
		a.unenroll(ctx, uid, "reconcile")
		return nil
	case pod.Annotations[AnnotationRedirection] != "":
		// Marked by an earlier agent but no longer enrolled: remove what
		// that agent left in the pod.
		return a.removeStale(ctx, pod)
	}
	return nil
}

// initialSync runs once after the informers synced and before ZDS is
// served: it captures and holds every pod that should be enrolled (adopting
// rules an earlier agent left) and removes leftovers from pods that should
// not, so that the first snapshot ztunnel gets is complete.
func (a *Agent) initialSync(ctx context.Context) {
	pods, err := a.podLister.List(labels.Everything())
	if err != nil {
		a.log.Error("list pods", "err", err)
		return
	}
	held := 0
	for _, pod := range pods {
		if ctx.Err() != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
		want := shouldEnroll(pod, a.namespace(pod.Namespace)) && podRunning(pod)
		switch {
		case want:
			if err := a.enroll(rctx, pod, "", podIPs(pod), "startup", false); err != nil {
				a.log.Warn("startup enroll", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			} else {
				held++
			}
		case pod.Annotations[AnnotationRedirection] != "":
			if err := a.removeStale(rctx, pod); err != nil {
				a.log.Warn("startup cleanup", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			}
		}
		cancel()
	}
	a.log.Info("startup reconcile done", "pods_held", held)
}

// removeStale removes rules an earlier agent left in a pod that is no
// longer enrolled, then the annotation.
func (a *Agent) removeStale(ctx context.Context, pod *corev1.Pod) error {
	unlock := a.podLocks.lock(string(pod.UID))
	defer unlock()
	if podRunning(pod) {
		ns, err := a.findNetns(pod.Namespace, pod.Name, string(pod.UID), podIPs(pod))
		switch {
		case err == nil:
			rerr := a.rules.Remove(ns)
			_ = ns.Close()
			if rerr != nil {
				a.metrics.failure(reasonRemove)
				return rerr
			}
		case !errors.Is(err, ErrNetnsNotFound):
			return err
		}
		for _, pt := range a.probeTargets(podIPs(pod)) {
			_ = pt.rules.Delete(pt.ip, string(pod.UID))
		}
	}
	a.clearAnnotation(ctx, pod.Namespace, pod.Name)
	a.log.Info("removed rules left by an earlier agent", "pod", pod.Namespace+"/"+pod.Name)
	return nil
}

// cleanupLoop removes probe SNAT rules of pods the agent no longer holds
// (left by an earlier agent for pods deleted meanwhile), once the first
// reconcile had time to adopt live pods and then periodically.
func (a *Agent) cleanupLoop(ctx context.Context) {
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.cleanupProbes()
		t.Reset(a.cfg.ResyncInterval)
	}
}

func (a *Agent) cleanupProbes() {
	for _, probes := range []probeRules{a.probes, a.probes6} {
		if probes == nil {
			continue
		}
		rules, err := probes.List()
		if err != nil {
			a.log.Warn("list probe snat rules", "err", err)
			continue
		}
		for uid, ip := range rules {
			unlock := a.podLocks.lock(uid)
			if a.state(uid) == nil {
				if err := probes.Delete(ip, uid); err != nil {
					a.log.Warn("remove stale probe snat", "uid", uid, "err", err)
				} else {
					a.log.Info("removed stale probe snat", "uid", uid, "ip", ip)
				}
			}
			unlock()
		}
	}
}

// ztunnelWatch reports, once per pod, pods held without a ztunnel to serve
// them for longer than grace, as a pod event (readiness already fails).
func (a *Agent) ztunnelWatch(ctx context.Context, grace time.Duration) {
	t := time.NewTicker(grace)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.zt.Connected() > 0 {
			continue
		}
		a.mu.Lock()
		var waiting []*podState
		for _, st := range a.pods {
			if !st.acked && !st.reportedNoZtunnel {
				st.reportedNoZtunnel = true
				waiting = append(waiting, st)
			}
		}
		a.mu.Unlock()
		for _, st := range waiting {
			a.eventf(st, corev1.EventTypeWarning, "ZtunnelNotConnected",
				"no ztunnel is connected to %s on this node; the pod's traffic is captured but not served until ztunnel connects", a.cfg.ZDSSocket)
		}
		if len(waiting) > 0 {
			a.log.Warn("pods waiting for ztunnel", "pods", len(waiting), "socket", a.cfg.ZDSSocket)
		}
	}
}
