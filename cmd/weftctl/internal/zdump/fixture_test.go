package zdump

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"math/big"
	"net/netip"
	"net/url"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
	"github.com/weftmesh/weft/pkg/xds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/telemetry"
	"github.com/weftmesh/weft/ztunnel/udp"
)

var regenFixture = flag.Bool("regen-fixture", false, "rewrite testdata/config_dump.json from the types ztunnel serves")

// FixtureNow is the instant the fixture's certificates are judged at.
var FixtureNow = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// TestRegenFixture writes the config_dump fixture the way ztunnel's admin
// server encodes its sections; it runs only with -regen-fixture (keys are
// random, so the fixture's PEM changes, not the golden tables).
func TestRegenFixture(t *testing.T) {
	if !*regenFixture {
		t.Skip("run with -regen-fixture to rewrite the fixture")
	}
	pj := func(m proto.Message) json.RawMessage {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ip := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	port := &workloadapi.PortList{Ports: []*workloadapi.Port{{ServicePort: 80, TargetPort: 8080}}}
	echoSvc := "demo/echo.demo.svc.cluster.local"
	wp := &workloadapi.GatewayAddress{Destination: &workloadapi.GatewayAddress_Hostname{Hostname: &workloadapi.NamespacedHostname{Namespace: "demo", Hostname: "waypoint.demo.svc.cluster.local"}}, HboneMtlsPort: 15008}
	workloads := []json.RawMessage{
		pj(&workloadapi.Workload{Uid: "Kubernetes//Pod/demo/client-7d9f", Name: "client-7d9f", Namespace: "demo", Addresses: [][]byte{ip("10.244.1.5")},
			TunnelProtocol: workloadapi.TunnelProtocol_HBONE, ServiceAccount: "client", Node: "node-a", ClusterId: "Kubernetes"}),
		pj(&workloadapi.Workload{Uid: "Kubernetes//Pod/demo/echo-1", Name: "echo-1", Namespace: "demo", Addresses: [][]byte{ip("10.244.1.6")},
			TunnelProtocol: workloadapi.TunnelProtocol_HBONE, ServiceAccount: "echo", Node: "node-a", ClusterId: "Kubernetes",
			Services: map[string]*workloadapi.PortList{echoSvc: port}, AuthorizationPolicies: []string{"demo/allow-client"}}),
		pj(&workloadapi.Workload{Uid: "Kubernetes//Pod/demo/echo-2", Name: "echo-2", Namespace: "demo", Addresses: [][]byte{ip("10.244.2.7")},
			TunnelProtocol: workloadapi.TunnelProtocol_HBONE, ServiceAccount: "echo", Node: "node-b", ClusterId: "Kubernetes", Waypoint: wp,
			Status: workloadapi.WorkloadStatus_UNHEALTHY, Services: map[string]*workloadapi.PortList{echoSvc: port}, AuthorizationPolicies: []string{"demo/allow-client"}}),
		pj(&workloadapi.Workload{Uid: "Kubernetes//Pod/legacy/batch-0", Name: "batch-0", Namespace: "legacy", Addresses: [][]byte{ip("10.244.2.8")},
			TunnelProtocol: workloadapi.TunnelProtocol_HBONE, Node: "node-b", ClusterId: "Kubernetes"}),
		pj(&workloadapi.Workload{Uid: "Kubernetes//Pod/legacy/old-0", Name: "old-0", Namespace: "legacy", Addresses: [][]byte{ip("10.244.2.9")},
			Node: "node-b", ClusterId: "Kubernetes"}),
	}
	services := []json.RawMessage{
		pj(&workloadapi.Service{Name: "echo", Namespace: "demo", Hostname: "echo.demo.svc.cluster.local",
			Addresses: []*workloadapi.NetworkAddress{{Address: ip("10.96.0.20")}}, Ports: port.Ports}),
		pj(&workloadapi.Service{Name: "web", Namespace: "demo", Hostname: "web.demo.svc.cluster.local", Waypoint: wp,
			Addresses: []*workloadapi.NetworkAddress{{Address: ip("10.96.0.21")}}, Ports: []*workloadapi.Port{{ServicePort: 443}}}),
	}
	exact := func(s string) *securityapi.StringMatch {
		return &securityapi.StringMatch{MatchType: &securityapi.StringMatch_Exact{Exact: s}}
	}
	policies := []json.RawMessage{
		pj(&securityapi.Authorization{Name: "allow-client", Namespace: "demo", Scope: securityapi.Scope_WORKLOAD_SELECTOR, Action: securityapi.Action_ALLOW,
			Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{{Principals: []*securityapi.StringMatch{exact("cluster.local/ns/demo/sa/client")}}}}}}}}),
		pj(&securityapi.Authorization{Name: "deny-legacy", Namespace: "demo", Scope: securityapi.Scope_NAMESPACE, Action: securityapi.Action_DENY,
			Rules: []*securityapi.Rule{{Clauses: []*securityapi.Clause{{Matches: []*securityapi.Match{{Namespaces: []*securityapi.StringMatch{exact("legacy")}}}}}}}}),
		pj(&securityapi.Authorization{Name: "istio_converted_static_strict", Namespace: "weft-system", Scope: securityapi.Scope_GLOBAL, Action: securityapi.Action_DENY, DryRun: true}),
	}
	rootCert, rootKey := mkCert(t, nil, nil, 1, "root", nil, FixtureNow.Add(-30*24*time.Hour), FixtureNow.Add(300*24*time.Hour))
	leaf, _ := mkCert(t, rootCert, rootKey, 0x2a4f, "", &url.URL{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/demo/sa/client"}, FixtureNow.Add(-time.Hour), FixtureNow.Add(23*time.Hour))
	chain := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})) + string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootCert.Raw}))
	certs := []certmgr.Status{
		{ID: identity.ID{TrustDomain: "cluster.local", Namespace: "demo", ServiceAccount: "client"}, State: certmgr.StateAvailable, Serial: "2a4f",
			NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, RefreshAt: FixtureNow.Add(11 * time.Hour), ChainPEM: chain, Refs: 1},
		{ID: identity.ID{TrustDomain: "cluster.local", Namespace: "demo", ServiceAccount: "echo"}, State: certmgr.StateUnavailable, Refs: 1,
			LastError: "rpc error: code = Unavailable desc = connection refused", Failures: 3},
	}
	started := FixtureNow.Add(-5 * time.Minute)
	dump := map[string]any{
		"workloads": workloads, "services": services, "policies": policies, "certificates": certs,
		"workloadState": []inpod.State{
			{UID: "Kubernetes//Pod/demo/client-7d9f", Name: "client-7d9f", Namespace: "demo", ServiceAccount: "client", State: "up", Connections: 2, Added: started},
			{UID: "Kubernetes//Pod/demo/echo-1", Name: "echo-1", Namespace: "demo", ServiceAccount: "echo", State: "up", Connections: 1, Added: started},
		},
		"connections": []telemetry.ConnState{
			{Workload: "Kubernetes//Pod/demo/client-7d9f", Direction: "outbound", Local: "10.244.1.5:41234", Remote: "10.96.0.20:80", RemoteTarget: "10.244.1.6:15008", Protocol: "HBONE", SrcIdentity: "spiffe://cluster.local/ns/demo/sa/client", DstIdentity: "spiffe://cluster.local/ns/demo/sa/echo", BytesSent: 120, BytesRecv: 4096, Started: started},
			{Workload: "Kubernetes//Pod/demo/echo-1", Direction: "inbound", Local: "10.244.1.6:8080", Remote: "10.244.1.5:41234", RemoteTarget: "10.244.1.6:8080", Protocol: "HBONE", SrcIdentity: "spiffe://cluster.local/ns/demo/sa/client", DstIdentity: "spiffe://cluster.local/ns/demo/sa/echo", BytesSent: 4096, BytesRecv: 120, Started: started},
			{Workload: "Kubernetes//Pod/demo/client-7d9f", Direction: "outbound", Local: "10.244.1.5:41236", Remote: "10.244.2.7:8080", RemoteTarget: "10.244.2.7:15008", Protocol: "HBONE_QUIC", SrcIdentity: "spiffe://cluster.local/ns/demo/sa/client", DstIdentity: "spiffe://cluster.local/ns/demo/sa/echo", BytesSent: 64, BytesRecv: 512, Started: started.Add(time.Minute)},
		},
		"udpFlows": []udp.FlowInfo{
			{Workload: "Kubernetes//Pod/demo/client-7d9f", Pod: "demo/client-7d9f", Direction: "outbound", Src: "10.244.1.5:5000", Dst: "10.244.2.7:9001",
				Target: "10.244.2.7:9001", Path: "tunnel", Peer: "spiffe://cluster.local/ns/demo/sa/echo", BytesSent: 40, BytesRecv: 300, Opened: started, LastSeen: started.Add(time.Second)},
			{Workload: "Kubernetes//Pod/demo/client-7d9f", Pod: "demo/client-7d9f", Direction: "outbound", Src: "10.244.1.5:5001", Dst: "192.0.2.10:123",
				Target: "192.0.2.10:123", Path: "passthrough", BytesSent: 48, BytesRecv: 48, Opened: started, LastSeen: started},
			{Workload: "Kubernetes//Pod/demo/client-7d9f", Pod: "demo/client-7d9f", Direction: "outbound", Src: "10.244.1.5:5002", Dst: "10.244.1.6:9001",
				Failed: "no_quic", Error: "workload does not advertise quic", Opened: started, LastSeen: started},
			{Workload: "Kubernetes//Pod/demo/echo-1", Pod: "demo/echo-1", Direction: "inbound", Src: "10.244.3.9:0", Dst: "10.244.1.6:9001",
				Target: "10.244.1.6:9001", Path: "tunnel", Peer: "spiffe://cluster.local/ns/legacy/sa/default", BytesSent: 10, BytesRecv: 10, Opened: started, LastSeen: started},
		},
		"xds": xds.Status{Connected: true, Streams: 1, Types: map[string]xds.TypeStatus{
			"type.googleapis.com/istio.workload.Address":       {Wildcard: true, Resources: 6, Nonce: "n7", Version: "2026-11-27T08:59:00Z/12", ACKs: 7},
			"type.googleapis.com/istio.security.Authorization": {Wildcard: true, Resources: 3, Nonce: "n3", Version: "2026-11-27T08:58:00Z/4", ACKs: 3},
		}},
		"config": map[string]any{"nodeName": "node-a", "trustDomain": "cluster.local", "clusterId": "Kubernetes", "xdsAddress": "istiod.weft-system.svc:15012"},
	}
	b, err := json.MarshalIndent(dump, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("testdata/config_dump.json", append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, serial int64, cn string, uri *url.URL, nb, na time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: []string{"cluster.local"}}, NotBefore: nb, NotAfter: na}
	if uri != nil {
		tmpl.URIs = []*url.URL{uri}
		tmpl.Subject = pkix.Name{}
	}
	signer := key
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		parent = tmpl
	} else {
		signer = parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}
