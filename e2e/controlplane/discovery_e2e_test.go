//go:build e2e

package controlplane

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
	xdsclient "github.com/weftmesh/weft/pkg/xds"
)

const discNS = "cp-disc"

// view is what a test xDS client holds: workloads by uid and
// authorizations by name, with the time each last changed.
type view struct {
	mu        sync.Mutex
	workloads map[string]*workloadapi.Workload
	authz     map[string]*securityapi.Authorization
	changed   chan struct{}
}

func newView() *view {
	return &view{workloads: map[string]*workloadapi.Workload{}, authz: map[string]*securityapi.Authorization{}, changed: make(chan struct{}, 1)}
}

// Apply implements xdsclient.Handler.
func (v *view) Apply(typeURL string, rs []*discoveryv3.Resource, removed []string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch typeURL {
	case xdsclient.AddressType:
		for _, r := range rs {
			var a workloadapi.Address
			if err := proto.Unmarshal(r.GetResource().GetValue(), &a); err != nil {
				return err
			}
			if w := a.GetWorkload(); w != nil {
				v.workloads[w.GetUid()] = w
			}
		}
		for _, n := range removed {
			delete(v.workloads, n)
		}
	case xdsclient.AuthorizationType:
		for _, r := range rs {
			var a securityapi.Authorization
			if err := proto.Unmarshal(r.GetResource().GetValue(), &a); err != nil {
				return err
			}
			v.authz[a.GetNamespace()+"/"+a.GetName()] = &a
		}
		for _, n := range removed {
			delete(v.authz, n)
		}
	}
	select {
	case v.changed <- struct{}{}:
	default:
	}
	return nil
}

// pod returns the workload of pod ns/name, if held.
func (v *view) pod(ns, name string) *workloadapi.Workload {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, w := range v.workloads {
		if w.GetNamespace() == ns && w.GetName() == name {
			return w
		}
	}
	return nil
}

func (v *view) policy(name string) *securityapi.Authorization {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.authz[name]
}

// await waits until cond holds, re-checking on every response, and returns
// when it first held.
func (v *view) await(ctx context.Context, limit time.Duration, cond func() bool) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return time.Time{}, errors.New("timed out")
		case <-v.changed:
		case <-tick.C:
		}
	}
	return time.Now(), nil
}

// testDiscovery checks istiod-lite's workload discovery as a ztunnel sees
// it: over TLS on 15012 with a CA-issued ztunnel certificate (issue 6, lab
// part).
func testDiscovery(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n1 := e.l.Nodes()[0].Name
	if err := e.l.Apply("apiVersion: v1\nkind: Namespace\nmetadata: {name: " + discNS + "}\n---" +
		sleeper(systemNS, "ztunnel-x", "ztunnel", n1, false)); err != nil {
		t.Fatal(err)
	}
	zt := e.waitPods(t, systemNS, "app=ztunnel-x", 1, 2*time.Minute)[0]
	roots := e.rootPool(t)
	istiod := e.waitIstiod(t, 2)[0]

	// The client certificate a ztunnel holds for itself.
	tok, err := e.token(ctx, systemNS, "ztunnel", audience, &zt)
	if err != nil {
		t.Fatal(err)
	}
	ztID := identity.MustParseID("spiffe://cluster.local/ns/" + systemNS + "/sa/ztunnel")
	cert, err := issue(ctx, e.caClient(t, podAddr(istiod, "15012"), roots, tok, false), ztID)
	if err != nil {
		t.Fatal(err)
	}

	v := newView()
	c := xdsclient.NewClient(xdsclient.Config{
		Address: podAddr(istiod, "15012"), TLS: xdsTLS(cert, roots),
		Node:        &corev3.Node{Id: "ztunnel~" + zt.Status.PodIP + "~" + zt.Name + "." + systemNS + "~" + systemNS + ".svc.cluster.local"},
		Types:       []string{xdsclient.AddressType, xdsclient.AuthorizationType},
		Handler:     v,
		DialOptions: []grpc.DialOption{e.dialer()},
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	select {
	case <-c.Synced():
	case <-time.After(30 * time.Second):
		t.Fatalf("xDS client not synced: %+v", c.Status())
	}
	if w := v.pod(systemNS, zt.Name); w == nil {
		t.Fatalf("initial state lacks %s/%s", systemNS, zt.Name)
	}

	t.Run("plaintext xDS is off by default", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := e.node1.Dial(dctx, nil, "tcp", podAddr(istiod, "15010"))
		if err == nil {
			_ = c.Close()
			t.Errorf("%s accepts connections; the manifests should leave plaintext xDS off", podAddr(istiod, "15010"))
		}
	})

	const podName = "disc-1"
	var uid types.UID
	t.Run("new pod within 1s of Ready", func(t *testing.T) {
		// Record when the API server's watch reports the pod Ready.
		w, err := e.cs.CoreV1().Pods(discNS).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", podName).String()})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		// The node agent would mark the pod redirected once it is in the
		// mesh (istiod-lite's default --require-redirection); no node agent
		// runs here, so the pod carries the annotation from the start.
		if err := e.l.Apply(sleeper(discNS, podName, "disc", n1, false)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cs.CoreV1().Pods(discNS).Patch(ctx, podName, types.MergePatchType,
			[]byte(`{"metadata":{"annotations":{"ambient.istio.io/redirection":"enabled"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		var readyAt time.Time
		for readyAt.IsZero() {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					t.Fatal("pod watch closed")
				}
				if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted && podReady(p) {
					readyAt, uid = time.Now(), p.UID
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("pod not Ready")
			}
		}
		seenAt, err := v.await(ctx, 5*time.Second, func() bool {
			w := v.pod(discNS, podName)
			return w != nil && w.GetStatus() == workloadapi.WorkloadStatus_HEALTHY
		})
		if err != nil {
			t.Fatalf("xDS client has no healthy %s/%s 5s after Ready", discNS, podName)
		}
		lag := seenAt.Sub(readyAt)
		t.Logf("healthy workload at the client %s after the watch saw the pod Ready", lag.Round(time.Millisecond))
		if lag > time.Second {
			t.Errorf("workload arrived %s after Ready, want within 1s", lag)
		}
		wl := v.pod(discNS, podName)
		p, err := e.cs.CoreV1().Pods(discNS).Get(ctx, podName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(p.Status.PodIP); len(wl.GetAddresses()) != 1 || !net.IP(wl.GetAddresses()[0]).Equal(ip) {
			t.Errorf("workload addresses %v, want [%s]", wl.GetAddresses(), ip)
		}
		if wl.GetServiceAccount() != "disc" || wl.GetNode() != n1 {
			t.Errorf("workload service account %q node %q, want disc, %s", wl.GetServiceAccount(), wl.GetNode(), n1)
		}
		if wl.GetTunnelProtocol() != workloadapi.TunnelProtocol_NONE {
			t.Errorf("pod in an unlabelled namespace has tunnel_protocol %s, want NONE", wl.GetTunnelProtocol())
		}
	})
	if uid == "" {
		t.FailNow()
	}

	t.Run("tunnel_protocol follows the namespace label", func(t *testing.T) {
		for _, step := range []struct {
			patch string
			want  workloadapi.TunnelProtocol
		}{
			{`{"metadata":{"labels":{"istio.io/dataplane-mode":"ambient"}}}`, workloadapi.TunnelProtocol_HBONE},
			{`{"metadata":{"labels":{"istio.io/dataplane-mode":null}}}`, workloadapi.TunnelProtocol_NONE},
			{`{"metadata":{"labels":{"istio.io/dataplane-mode":"ambient"}}}`, workloadapi.TunnelProtocol_HBONE},
		} {
			start := time.Now()
			if _, err := e.cs.CoreV1().Namespaces().Patch(ctx, discNS, types.MergePatchType, []byte(step.patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := v.await(ctx, 5*time.Second, func() bool {
				w := v.pod(discNS, podName)
				return w != nil && w.GetTunnelProtocol() == step.want
			}); err != nil {
				t.Fatalf("after %s: tunnel_protocol %s, want %s", step.patch, v.pod(discNS, podName).GetTunnelProtocol(), step.want)
			}
			t.Logf("%s -> %s in %s", step.patch, step.want, time.Since(start).Round(time.Millisecond))
		}
	})

	t.Run("AuthorizationPolicy appears as an Authorization", func(t *testing.T) {
		start := time.Now()
		if err := e.l.Apply(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-app, namespace: ` + discNS + `}
spec:
  selector:
    matchLabels: {app: ` + podName + `}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/` + caNS + `/sa/app"]
    to:
    - operation:
        ports: ["8080"]
`); err != nil {
			t.Fatal(err)
		}
		name := discNS + "/allow-app"
		if _, err := v.await(ctx, 5*time.Second, func() bool { return v.policy(name) != nil }); err != nil {
			t.Fatalf("no Authorization %s", name)
		}
		a := v.policy(name)
		t.Logf("Authorization %s in %s: %v", name, time.Since(start).Round(time.Millisecond), a)
		if a.GetAction() != securityapi.Action_ALLOW || a.GetScope() != securityapi.Scope_WORKLOAD_SELECTOR || len(a.GetRules()) != 1 {
			t.Errorf("Authorization = %v, want ALLOW, WORKLOAD_SELECTOR, 1 rule", a)
		}
		// The selected workload names the policy.
		if _, err := v.await(ctx, 5*time.Second, func() bool {
			w := v.pod(discNS, podName)
			for _, p := range w.GetAuthorizationPolicies() {
				if p == name {
					return true
				}
			}
			return false
		}); err != nil {
			t.Errorf("workload %s lists policies %v, want %s", podName, v.pod(discNS, podName).GetAuthorizationPolicies(), name)
		}
		if _, err := e.l.Kubectl("delete", "authorizationpolicy", "-n", discNS, "allow-app"); err != nil {
			t.Fatal(err)
		}
		if _, err := v.await(ctx, 5*time.Second, func() bool { return v.policy(name) == nil }); err != nil {
			t.Errorf("Authorization %s not removed after the policy was deleted", name)
		}
	})

	t.Run("deleted pod leaves", func(t *testing.T) {
		start := time.Now()
		if err := e.cs.CoreV1().Pods(discNS).Delete(ctx, podName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := v.await(ctx, 30*time.Second, func() bool { return v.pod(discNS, podName) == nil }); err != nil {
			t.Fatalf("workload %s still held 30s after delete", podName)
		}
		t.Logf("workload removed %s after the delete call", time.Since(start).Round(time.Millisecond))
	})
	if st := c.Status(); st.Types[xdsclient.AddressType].NACKs+st.Types[xdsclient.AuthorizationType].NACKs != 0 {
		t.Errorf("client NACKed responses: %+v", st)
	}
}
