//go:build e2e

package mesh_test

import (
	"context"
	"testing"
)

// quicTransportLabel is the namespace label that puts a namespace's
// tunnels on HBONE over QUIC (docs/quic.md).
const quicTransportLabel = "weft.dev/hbone-transport"

// TestL4SuiteOverQUIC runs the L4 suite's policy and service tests again
// with the demo namespace on the QUIC transport: the same expectations
// (allow and deny by principal, namespace and port, STRICT and
// PERMISSIVE, outside-mesh passthrough, service VIP spreading and
// unready endpoints) must hold, and the server side must have counted
// its tunnels as QUIC, most of them at least (a handshake slower than the
// dialer's timeout on this busy machine may fall back to HTTP/2).
func TestL4SuiteOverQUIC(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	if _, err := e.kubectl(ctx, nil, "label", "namespace", "demo", quicTransportLabel+"=quic", "--overwrite"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := e.kubectl(context.Background(), nil, "label", "namespace", "demo", quicTransportLabel+"-"); err != nil {
			t.Error(err)
		}
	})
	_, server := e.clientAndServer(ctx, t)
	zs := e.ztunnelOn(ctx, t, server.Spec.NodeName)
	quicBefore, h2Before := e.tunnels(ctx, t, zs, "inbound", "quic"), e.tunnels(ctx, t, zs, "inbound", "h2")

	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"AuthorizationPolicy", TestAuthorizationPolicy},
		{"PeerAuthentication", TestPeerAuthentication},
		{"OutsideMesh", TestOutsideMesh},
		{"ServiceVIPSpreads", TestServiceVIPSpreads},
		{"ServiceEndpointUnready", TestServiceEndpointUnready},
	} {
		t.Run(tc.name, tc.run)
	}

	quic := e.tunnels(ctx, t, zs, "inbound", "quic") - quicBefore
	h2 := e.tunnels(ctx, t, zs, "inbound", "h2") - h2Before
	t.Logf("server's ztunnel: %v inbound tunnels over QUIC, %v over HTTP/2 during the suite", quic, h2)
	if quic == 0 || h2 > quic {
		t.Errorf("the suite did not run over QUIC: %v QUIC and %v HTTP/2 inbound tunnels at %s", quic, h2, zs.Name)
	}
}
