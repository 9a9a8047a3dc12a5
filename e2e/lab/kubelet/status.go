package kubelet

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podSnapshot is what status computation needs from a pod worker.
type podSnapshot struct {
	SandboxReady bool
	PodIPs       []string
	HostIP       string
	Terminal     bool
	Inits        []ctrStatus
	Containers   []ctrStatus
}

func (w *podWorker) snapshot() podSnapshot {
	w.mu.Lock()
	s := podSnapshot{HostIP: w.k.cfg.NodeIP, Terminal: w.terminal}
	if w.sandbox != nil {
		s.SandboxReady, s.PodIPs = true, w.sandbox.IPs
	}
	inits, ctrs := w.inits, w.ctrs
	w.mu.Unlock()
	for _, c := range inits {
		s.Inits = append(s.Inits, c.snapshot())
	}
	for _, c := range ctrs {
		s.Containers = append(s.Containers, c.snapshot())
	}
	return s
}

func containerStatus(c ctrStatus) v1.ContainerStatus {
	cs := v1.ContainerStatus{
		Name: c.Name, Image: c.Image, ImageID: "lite://" + imageRepository(c.Image),
		RestartCount: c.RestartCount, Ready: c.Ready, ContainerID: c.ID,
	}
	started := c.Running && c.Started
	cs.Started = &started
	switch {
	case c.Running:
		cs.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(c.StartedAt)}
	case c.Current != nil:
		cs.State.Terminated = terminated(c.Current)
	default:
		reason := c.WaitingReason
		if reason == "" {
			reason = "ContainerCreating"
		}
		cs.State.Waiting = &v1.ContainerStateWaiting{Reason: reason, Message: c.WaitingMsg}
	}
	if c.Last != nil && c.Current != c.Last {
		cs.LastTerminationState.Terminated = terminated(c.Last)
	}
	return cs
}

func terminated(t *termination) *v1.ContainerStateTerminated {
	return &v1.ContainerStateTerminated{
		ExitCode: t.ExitCode, Signal: t.Signal, Reason: t.Reason, Message: t.Message,
		StartedAt: metav1.NewTime(t.StartedAt), FinishedAt: metav1.NewTime(t.FinishedAt),
		ContainerID: t.ID,
	}
}

// computeStatus derives a pod's status from its worker's state. prev is
// the current API status; condition transition times are kept when the
// condition's status is unchanged.
func computeStatus(pod *v1.Pod, s podSnapshot, now time.Time) v1.PodStatus {
	st := v1.PodStatus{HostIP: s.HostIP, QOSClass: pod.Status.QOSClass}
	if s.HostIP != "" {
		st.HostIPs = []v1.HostIP{{IP: s.HostIP}}
	}
	if pod.Status.StartTime != nil {
		st.StartTime = pod.Status.StartTime
	} else {
		t := metav1.NewTime(now)
		st.StartTime = &t
	}
	if s.SandboxReady || s.Terminal {
		ips := s.PodIPs
		if s.Terminal && len(ips) == 0 {
			for _, ip := range pod.Status.PodIPs {
				ips = append(ips, ip.IP)
			}
		}
		if len(ips) > 0 {
			st.PodIP = ips[0]
		}
		for _, ip := range ips {
			st.PodIPs = append(st.PodIPs, v1.PodIP{IP: ip})
		}
	}
	initialized := true
	for _, c := range s.Inits {
		st.InitContainerStatuses = append(st.InitContainerStatuses, containerStatus(c))
		if c.Sidecar {
			if !c.Running || !c.Started {
				initialized = false
			}
		} else if c.Current == nil || c.Current.ExitCode != 0 {
			initialized = false
		}
	}
	allReady := len(s.Containers) > 0
	running, succeeded, failed := 0, 0, 0
	for _, c := range s.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(c))
		if !c.Ready {
			allReady = false
		}
		switch {
		case c.Running:
			running++
		case c.Current != nil && c.Current.ExitCode == 0:
			succeeded++
		case c.Current != nil:
			failed++
		}
	}
	initFailed := false
	for _, c := range s.Inits {
		if !c.Sidecar && c.Current != nil && c.Current.ExitCode != 0 {
			initFailed = true
		}
	}
	switch {
	case initFailed:
		st.Phase = v1.PodFailed
	case len(s.Containers) > 0 && succeeded+failed == len(s.Containers):
		st.Phase = v1.PodSucceeded
		if failed > 0 {
			st.Phase = v1.PodFailed
		}
	case !initialized:
		st.Phase = v1.PodPending
	case running > 0 || anyStarted(s.Containers):
		st.Phase = v1.PodRunning
	default:
		st.Phase = v1.PodPending
	}
	ready := allReady && initialized && st.Phase == v1.PodRunning
	cond := func(t v1.PodConditionType, ok bool, reason string) {
		c := v1.PodCondition{Type: t, Status: v1.ConditionFalse, LastTransitionTime: metav1.NewTime(now)}
		if ok {
			c.Status = v1.ConditionTrue
		} else {
			c.Reason = reason
		}
		for _, old := range pod.Status.Conditions {
			if old.Type == t && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	cond(v1.PodReadyToStartContainers, s.SandboxReady, "")
	cond(v1.PodInitialized, initialized, "ContainersNotInitialized")
	cond(v1.ContainersReady, ready, "ContainersNotReady")
	cond(v1.PodReady, ready, "ContainersNotReady")
	cond(v1.PodScheduled, true, "")
	// Keep conditions owned by others (readiness gates, disruption).
	for _, old := range pod.Status.Conditions {
		switch old.Type {
		case v1.PodReadyToStartContainers, v1.PodInitialized, v1.ContainersReady, v1.PodReady, v1.PodScheduled:
		default:
			st.Conditions = append(st.Conditions, old)
		}
	}
	return st
}

func anyStarted(cs []ctrStatus) bool {
	for _, c := range cs {
		if c.RestartCount > 0 || c.Last != nil {
			return true
		}
	}
	return false
}

// statusLoop writes the pod status whenever the worker signals a change,
// at most every 200ms, and once more when ctx ends.
func (w *podWorker) statusLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.statusCh:
		}
		w.writeStatus(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// writeStatus posts the computed status through the status subresource
// when it differs from the API's.
func (w *podWorker) writeStatus(ctx context.Context) {
	w.mu.Lock()
	removed := w.removed
	w.mu.Unlock()
	if removed {
		return
	}
	snap := w.snapshot()
	for attempt := 0; attempt < 3; attempt++ {
		pod := w.currentPod()
		st := computeStatus(pod, snap, time.Now())
		if apiequality.Semantic.DeepEqual(st, pod.Status) {
			return
		}
		upd := pod.DeepCopy()
		upd.Status = st
		res, err := w.k.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, upd, metav1.UpdateOptions{})
		if err == nil {
			w.mu.Lock()
			if w.pod.ResourceVersion == pod.ResourceVersion {
				w.pod = res
			}
			w.mu.Unlock()
			return
		}
		if apierrors.IsNotFound(err) || ctx.Err() != nil {
			return
		}
		if !apierrors.IsConflict(err) {
			w.log.Warn("update pod status", "err", err)
			return
		}
		fresh, err := w.k.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return
		}
		w.mu.Lock()
		w.pod = fresh
		w.mu.Unlock()
	}
}
