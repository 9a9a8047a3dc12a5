//go:build linux

package proxy_test

import (
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	wl "github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/wds"
)

// closedSoon reports whether the held connection is ended by the mesh
// within a few seconds (an echo fails), without waiting for the client's
// own timeouts.
func closedSoon(c *client) bool {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.echo("x"); err != nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func denyPort(name string, scope securityapi.Scope, port uint32) *securityapi.Authorization {
	return &securityapi.Authorization{Name: name, Namespace: "demo", Scope: scope, Action: securityapi.Action_DENY,
		Rules: rule(&securityapi.Match{DestinationPorts: []uint32{port}})}
}

// TestPolicyChange: a DENY applied while connections are open refuses new
// connections at once (no decision is reused) and closes the open
// connections it denies, over HBONE and plaintext alike; connections it
// does not match stay open, and removing the policy admits again.
func TestPolicyChange(t *testing.T) {
	m := newMesh(t, map[string]string{"a": ipA, "b": ipB, "c": ipC})
	serveEcho(t, m.top.ns["b"], 8080)
	serveEcho(t, m.top.ns["b"], 8081)
	a, c := m.top.ns["a"], m.top.ns["c"]

	hold := func(t *testing.T, from string, addr string) *client {
		t.Helper()
		h, err := open(m.top.ns[from], addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		if _, err := h.exchange("hello"); err != nil {
			t.Fatalf("%s → %s before the policy: %v", from, addr, err)
		}
		return h
	}

	t.Run("namespace DENY on a port", func(t *testing.T) {
		viaVIP := hold(t, "a", vip+":80")
		viaPod := hold(t, "a", ipB+":8080")
		plain := hold(t, "c", ipB+":8080")
		otherPort := hold(t, "a", ipB+":8081")

		remove := m.policy(t, denyPort("deny-8080", securityapi.Scope_NAMESPACE, 8080))
		// New connections are refused at once: nothing allowed before the
		// change is reused.
		if _, err := talk(a, vip+":80"); err == nil {
			t.Error("new HBONE connection to the denied port allowed")
		}
		if _, err := talk(c, ipB+":8080"); err == nil {
			t.Error("new plaintext connection to the denied port allowed")
		}
		for name, h := range map[string]*client{"HBONE via VIP": viaVIP, "HBONE to pod IP": viaPod, "plaintext": plain} {
			if !closedSoon(h) {
				t.Errorf("%s connection opened before the DENY is still open", name)
			}
		}
		if err := otherPort.echo("still"); err != nil {
			t.Errorf("connection to a port the DENY does not match was closed: %v", err)
		}
		waitFor(t, func() bool { return strings.Contains(m.logs.String(), "connection closed due to policy change") })

		remove()
		if _, err := talk(a, vip+":80"); err != nil {
			t.Errorf("DENY removed: connection still refused: %v", err)
		}
	})

	t.Run("selector DENY takes effect when the workload lists it", func(t *testing.T) {
		held := hold(t, "a", vip+":80")
		remove := m.policy(t, denyPort("deny-sel", securityapi.Scope_WORKLOAD_SELECTOR, 8080))
		defer remove()
		if err := held.echo("not yet"); err != nil {
			t.Fatalf("closed before the workload selects the policy: %v", err)
		}
		withPolicy := workload("b", ipB, "server", map[string]*wl.PortList{
			"demo/" + echoH: {Ports: []*wl.Port{{ServicePort: 80, TargetPort: 8080}}}})
		withPolicy.GetWorkload().AuthorizationPolicies = []string{"demo/deny-sel"}
		if err := m.store.Apply(wds.AddressType, []*discoveryv3.Resource{resource(t, "c1//Pod/demo/b", withPolicy)}, nil); err != nil {
			t.Fatal(err)
		}
		if !closedSoon(held) {
			t.Error("connection still open after the workload selected a DENY policy")
		}
		if _, err := talk(a, vip+":80"); err == nil {
			t.Error("new connection allowed")
		}
	})
}
