package ca

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/pkg/identity"
)

// fakePods is a PodLookup over a fixed map of node to pods.
type fakePods struct {
	byNode map[string][]ScheduledPod
	synced bool
	err    error
	asked  []string
}

var _ PodLookup = (*fakePods)(nil)

func (f *fakePods) PodsOnNode(node string) ([]ScheduledPod, error) {
	f.asked = append(f.asked, node)
	return f.byNode[node], f.err
}

func (f *fakePods) HasSynced() bool { return f.synced }

func TestImpersonatorWithPodLookup(t *testing.T) {
	zt := caller{Namespace: "istio-system", ServiceAccount: "ztunnel", NodeName: "node-a"}
	id := func(ns, sa string) identity.ID {
		t.Helper()
		i, err := identity.NewID("cluster.local", ns, sa)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	pods := map[string][]ScheduledPod{"node-a": {
		{Namespace: "demo", ServiceAccount: "app", Phase: corev1.PodRunning},
		{Namespace: "demo", ServiceAccount: "", Phase: corev1.PodPending},
		{Namespace: "demo", ServiceAccount: "batch", Phase: corev1.PodSucceeded},
		{Namespace: "other", ServiceAccount: "db", Phase: corev1.PodRunning},
	}}
	tests := []struct {
		name    string
		lookup  *fakePods
		c       caller
		target  identity.ID
		wantErr string // empty: allowed
	}{
		{name: "running pod on node", lookup: &fakePods{byNode: pods, synced: true}, c: zt, target: id("demo", "app")},
		{name: "empty service account is default", lookup: &fakePods{byNode: pods, synced: true}, c: zt, target: id("demo", "default")},
		{name: "finished pod", lookup: &fakePods{byNode: pods, synced: true}, c: zt, target: id("demo", "batch"), wantErr: "no running pod"},
		{name: "service account in another namespace", lookup: &fakePods{byNode: pods, synced: true}, c: zt, target: id("demo", "db"), wantErr: "no running pod"},
		{name: "not synced", lookup: &fakePods{byNode: pods}, c: zt, target: id("demo", "app"), wantErr: errNotSynced.Error()},
		{name: "lookup fails", lookup: &fakePods{synced: true, err: errors.New("boom")}, c: zt, target: id("demo", "app"), wantErr: "look up pods on node node-a: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := &impersonator{ztunnels: []string{"istio-system/ztunnel"}, pods: tt.lookup}
			err := im.allow(tt.c, tt.target)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("allow: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("allow: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigPodsReplacesPodInformer(t *testing.T) {
	fc := newFakeCluster()
	lookup := &fakePods{synced: true, byNode: map[string][]ScheduledPod{"node-a": {{Namespace: "demo", ServiceAccount: "app", Phase: corev1.PodRunning}}}}
	ca := startCA(t, fc, func(c *Config) { c.Pods = lookup })
	if !ca.srv.Ready() {
		t.Fatal("CA not ready with a synced lookup")
	}
	for _, a := range fc.kube.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "pods" {
			t.Errorf("CA listed pods itself although Config.Pods is set: %v", a)
		}
	}
	app := identity.ID{TrustDomain: "cluster.local", Namespace: "demo", ServiceAccount: "app"}
	if err := ca.srv.imp.allow(caller{Namespace: "istio-system", ServiceAccount: "ztunnel", NodeName: "node-a"}, app); err != nil {
		t.Errorf("allow through Config.Pods: %v", err)
	}
	if len(lookup.asked) != 1 || lookup.asked[0] != "node-a" {
		t.Errorf("lookup asked for %v, want [node-a]", lookup.asked)
	}
}
