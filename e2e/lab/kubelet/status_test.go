package kubelet

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
)

func TestComputeStatus(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := &v1.Pod{}
	conds := func(st v1.PodStatus) map[v1.PodConditionType]v1.ConditionStatus {
		m := map[v1.PodConditionType]v1.ConditionStatus{}
		for _, c := range st.Conditions {
			m[c.Type] = c.Status
		}
		return m
	}
	running := ctrStatus{Name: "app", Running: true, Started: true, Ready: true, StartedAt: now}
	done := func(code int32) ctrStatus {
		t := &termination{ExitCode: code}
		return ctrStatus{Name: "app", Current: t, Last: t}
	}
	for _, tc := range []struct {
		name      string
		snap      podSnapshot
		wantPhase v1.PodPhase
		wantReady v1.ConditionStatus
		wantInit  v1.ConditionStatus
	}{
		{"creating", podSnapshot{Containers: []ctrStatus{{Name: "app"}}}, v1.PodPending, v1.ConditionFalse, v1.ConditionTrue},
		{"running ready", podSnapshot{SandboxReady: true, PodIPs: []string{"10.244.1.2"}, Containers: []ctrStatus{running}}, v1.PodRunning, v1.ConditionTrue, v1.ConditionTrue},
		{"running not ready", podSnapshot{SandboxReady: true, Containers: []ctrStatus{{Name: "app", Running: true}}}, v1.PodRunning, v1.ConditionFalse, v1.ConditionTrue},
		{"init pending", podSnapshot{SandboxReady: true, Inits: []ctrStatus{{Name: "init", Init: true, Running: true}}, Containers: []ctrStatus{{Name: "app"}}}, v1.PodPending, v1.ConditionFalse, v1.ConditionFalse},
		{"init failed", podSnapshot{Inits: []ctrStatus{{Name: "init", Init: true, Current: &termination{ExitCode: 1}}}, Containers: []ctrStatus{{Name: "app"}}}, v1.PodFailed, v1.ConditionFalse, v1.ConditionFalse},
		{"succeeded", podSnapshot{Terminal: true, Containers: []ctrStatus{done(0)}}, v1.PodSucceeded, v1.ConditionFalse, v1.ConditionTrue},
		{"failed", podSnapshot{Terminal: true, Containers: []ctrStatus{done(2)}}, v1.PodFailed, v1.ConditionFalse, v1.ConditionTrue},
		{"crash looping", podSnapshot{SandboxReady: true, Containers: []ctrStatus{{Name: "app", RestartCount: 3, WaitingReason: "CrashLoopBackOff", Last: &termination{ExitCode: 1}}}}, v1.PodRunning, v1.ConditionFalse, v1.ConditionTrue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := computeStatus(pod, tc.snap, now)
			if st.Phase != tc.wantPhase {
				t.Errorf("phase = %s, want %s", st.Phase, tc.wantPhase)
			}
			c := conds(st)
			if c[v1.PodReady] != tc.wantReady || c[v1.ContainersReady] != tc.wantReady {
				t.Errorf("ready = %s/%s, want %s", c[v1.PodReady], c[v1.ContainersReady], tc.wantReady)
			}
			if c[v1.PodInitialized] != tc.wantInit {
				t.Errorf("initialized = %s, want %s", c[v1.PodInitialized], tc.wantInit)
			}
			if c[v1.PodScheduled] != v1.ConditionTrue {
				t.Errorf("PodScheduled = %s", c[v1.PodScheduled])
			}
		})
	}
	st := computeStatus(pod, podSnapshot{SandboxReady: true, HostIP: "192.168.50.2", PodIPs: []string{"10.244.1.2"},
		Containers: []ctrStatus{{Name: "app", RestartCount: 3, WaitingReason: "CrashLoopBackOff", WaitingMsg: "back-off", Last: &termination{ExitCode: 1, Reason: "Error"}}}}, now)
	cs := st.ContainerStatuses[0]
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || cs.RestartCount != 3 ||
		cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("crash-looping container status = %+v", cs)
	}
	if diff := cmp.Diff([]v1.PodIP{{IP: "10.244.1.2"}}, st.PodIPs); diff != "" || st.PodIP != "10.244.1.2" || st.HostIP != "192.168.50.2" {
		t.Errorf("IPs: %s %s %s", diff, st.PodIP, st.HostIP)
	}
}
