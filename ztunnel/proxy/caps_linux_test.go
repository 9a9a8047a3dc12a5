//go:build linux

package proxy_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/ztunnel/proxy"
)

// refusedCount reads weft_ztunnel_connections_refused_total{direction,reason}.
func refusedCount(t testing.TB, m *mesh, direction, reason string) float64 {
	t.Helper()
	mfs, err := m.met.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "weft_ztunnel_connections_refused_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["direction"] == direction && l["reason"] == reason {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// holdN opens n connections from the pod ns to addr and makes each do a
// round trip; they are closed when the test ends.
func holdN(t *testing.T, m *mesh, from, addr string, n int) []*client {
	t.Helper()
	var held []*client
	for i := range n {
		c, err := open(m.top.ns[from], addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.exchange("hi"); err != nil {
			t.Fatalf("connection %d of %d from %s to %s: %v", i+1, n, from, addr, err)
		}
		held = append(held, c)
	}
	return held
}

// expectReset opens n connections from the pod to addr and wants each
// reset before the application's greeting.
func expectReset(t *testing.T, m *mesh, from, addr string, n int) {
	t.Helper()
	for range n {
		_, err := talk(m.top.ns[from], addr)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("connection over the cap from %s to %s: %v, want ECONNRESET", from, addr, err)
		}
	}
}

func closeClients(cs []*client) {
	for _, c := range cs {
		_ = c.Close()
	}
}

// TestConnectionCaps runs the caps on real sockets: a pod's outbound and
// inbound connections each capped at 4, the node's at 6. Each case opens
// the cap's worth of connections, then N more, and wants exactly those N
// refused with the right reason (a reset for the application, a 503 for a
// CONNECT), then frees a slot and connects again; every case ends with
// the node holding nothing, so no path leaks a slot.
func TestConnectionCaps(t *testing.T) {
	m := newMeshWith(t, map[string]string{"a": ipA, "b": ipB, "c": ipC}, func(c *proxy.Config) {
		c.MaxConnsPerPod, c.MaxConnsPerNode = 4, 6
	})
	serveEcho(t, m.top.ns["b"], 8080)
	serveEcho(t, m.top.ns["c"], 9090)
	drained := func(t *testing.T) {
		t.Helper()
		waitFor(t, func() bool { return m.px.OpenConns() == 0 })
	}
	opens := func(t *testing.T, want int64) {
		t.Helper()
		waitFor(t, func() bool { return m.px.OpenConns() == want })
	}

	t.Run("outbound pod cap", func(t *testing.T) {
		held := holdN(t, m, "a", ipC+":9090", 4) // passthrough: a's outbound only
		expectReset(t, m, "a", ipC+":9090", 2)
		if got := refusedCount(t, m, "outbound", "pod_limit"); got != 2 {
			t.Errorf("refused outbound/pod_limit %v, want 2", got)
		}
		_ = held[0].Close()
		opens(t, 3)
		holdN(t, m, "a", ipC+":9090", 1)
		expectReset(t, m, "a", ipC+":9090", 1)
		if got := refusedCount(t, m, "outbound", "pod_limit"); got != 3 {
			t.Errorf("refused outbound/pod_limit %v, want 3", got)
		}
		// The other direction of the same pod is not capped by this one.
		if _, err := talk(m.top.ns["c"], ipB+":8080"); err != nil {
			t.Errorf("inbound to b while a's outbound is full: %v", err)
		}
		closeClients(held)
	})
	drained(t)

	t.Run("inbound pod cap, plaintext and HBONE", func(t *testing.T) {
		held := holdN(t, m, "c", ipB+":8080", 4) // plaintext into b: b's inbound only
		expectReset(t, m, "c", ipB+":8080", 1)
		// a's outbound is admitted, b answers its CONNECT 503, and a resets
		// the application's connection.
		expectReset(t, m, "a", ipB+":8080", 2)
		if got := refusedCount(t, m, "inbound", "pod_limit"); got != 3 {
			t.Errorf("refused inbound/pod_limit %v, want 3", got)
		}
		waitFor(t, func() bool { return counted(t, m, "istio_tcp_connections_failed_total", "source", "UF") >= 2 })
		opens(t, 4) // a's refused tunnels gave their slots back
		_ = held[0].Close()
		opens(t, 3)
		holdN(t, m, "a", ipB+":8080", 1) // over HBONE this time
		closeClients(held)
	})
	drained(t)

	t.Run("node cap", func(t *testing.T) {
		held := holdN(t, m, "a", ipB+":8080", 3) // HBONE: a's outbound and b's inbound, 6
		expectReset(t, m, "a", ipC+":9090", 1)   // a's 4th outbound: the node is full
		expectReset(t, m, "c", ipB+":8080", 1)   // b's 4th inbound: the node is full
		if got := refusedCount(t, m, "outbound", "node_limit"); got != 1 {
			t.Errorf("refused outbound/node_limit %v, want 1", got)
		}
		if got := refusedCount(t, m, "inbound", "node_limit"); got != 1 {
			t.Errorf("refused inbound/node_limit %v, want 1", got)
		}
		_ = held[0].Close()
		opens(t, 4)
		holdN(t, m, "a", ipC+":9090", 1)
		closeClients(held)
	})
	drained(t)

	t.Run("every failure and close path gives its slot back", func(t *testing.T) {
		// Refused by policy (401), upstream refusing (503 / UF), a
		// passthrough dial failing, a client resetting, and a connection
		// revoked by a policy change.
		undo := m.policy(t, &securityapi.Authorization{Name: "deny-client", Namespace: "demo", Scope: securityapi.Scope_NAMESPACE,
			Action: securityapi.Action_DENY, Rules: rule(&securityapi.Match{Principals: []*securityapi.StringMatch{principal("cluster.local/ns/demo/sa/client")}})})
		for range 5 {
			if _, err := talk(m.top.ns["a"], ipB+":8080"); err == nil {
				t.Fatal("denied connection went through")
			}
		}
		undo()
		for _, addr := range []string{ipB + ":9999", ipC + ":9999"} {
			for range 5 {
				if _, err := talk(m.top.ns["a"], addr); err == nil {
					t.Fatalf("connection to closed port %s went through", addr)
				}
			}
		}
		for range 5 {
			c := holdN(t, m, "a", ipB+":8080", 1)[0]
			_ = c.Conn.(*net.TCPConn).SetLinger(0)
			_ = c.Close() // RST from the client
		}
		held := holdN(t, m, "a", ipB+":8080", 2)
		undo = m.policy(t, &securityapi.Authorization{Name: "deny-client", Namespace: "demo", Scope: securityapi.Scope_NAMESPACE,
			Action: securityapi.Action_DENY, Rules: rule(&securityapi.Match{Principals: []*securityapi.StringMatch{principal("cluster.local/ns/demo/sa/client")}})})
		for _, c := range held { // the re-check runs after the change
			waitFor(t, func() bool { return c.echo("after") != nil })
		}
		undo()
		drained(t)
		// And the full caps are there again.
		closeClients(holdN(t, m, "a", ipC+":9090", 4))
	})
	drained(t)
}
