//go:build e2e

package mesh_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/e2e/probe"
	"github.com/weftmesh/weft/pkg/identity"
)

// signer is a CA that mints attacker certificates.
type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// meshCA reads the mesh's own signing CA from istiod-lite's Secret (the
// test is cluster admin), to mint certificates the mesh would trust but
// for the flaw each attack carries.
func (e *meshEnv) meshCA(ctx context.Context, t *testing.T) signer {
	t.Helper()
	s, err := e.cs.CoreV1().Secrets("weft-system").Get(ctx, "istio-ca-secret", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("mesh CA secret: %v", err)
	}
	certs, err := identity.ParseCertificates(s.Data["ca-cert.pem"])
	if err != nil || len(certs) == 0 {
		t.Fatalf("mesh CA certificate: %v", err)
	}
	key, err := identity.ParseKey(s.Data["ca-key.pem"])
	if err != nil {
		t.Fatalf("mesh CA key: %v", err)
	}
	return signer{certs[0], key}
}

// selfSignedCA returns a new CA nobody in the mesh trusts.
func selfSignedCA(t *testing.T, name string) signer {
	t.Helper()
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{name}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return signer{cert, key}
}

// mint writes a leaf for spiffeID signed by ca, valid from notBefore to
// notAfter, as chain and key PEM files in dir; it returns their paths.
func (ca signer) mint(t *testing.T, dir, spiffeID string, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	u, err := url.Parse(spiffeID)
	if err != nil {
		t.Fatal(err)
	}
	key, err := identity.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		URIs:                  []*url.URL{u},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := identity.EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "leaf-*")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	certFile, keyFile = f.Name()+".crt", f.Name()+".key"
	chain := append(identity.EncodeCertificate(leaf), identity.EncodeCertificate(ca.cert)...)
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// hbone runs weft-probe hbone in pod from.
func (e *meshEnv) hbone(ctx context.Context, t *testing.T, from corev1.Pod, addr, authority, cert, key string, headers ...string) probe.HBONEResult {
	t.Helper()
	argv := []string{e.probeBin(t), "hbone", "--addr", addr, "--authority", authority}
	if cert != "" {
		argv = append(argv, "--cert", cert, "--key", key)
	}
	for _, h := range headers {
		argv = append(argv, "-H", h)
	}
	out, err := e.exec(ctx, from.Namespace, from.Name, argv...)
	if err != nil {
		t.Fatalf("weft-probe hbone: %v", err)
	}
	var res probe.HBONEResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
		t.Fatalf("weft-probe hbone output %q: %v", out, err)
	}
	return res
}

// TestHBONEAttacks: a pod outside the mesh connects straight to an enrolled
// pod's HBONE port. With a certificate the mesh trusts for a real identity
// it gets through (the control: the attack path works); with no
// certificate, a self-signed one, one from another trust domain (foreign
// CA, or the mesh CA naming another trust domain), an expired one or one
// not yet valid, it is refused before any CONNECT; with a valid
// certificate for its own identity and headers claiming another
// (forwarded, baggage), the policy still sees its own identity and denies
// it. Nothing changes in ztunnel's state.
func TestHBONEAttacks(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	e.useNamespace(ctx, t, "weft-attack")
	attacker := e.startPod(ctx, t, "weft-attack", "attacker", "attacker", client.Spec.NodeName, nil)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-client, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/demo/sa/client"]}
`)
	z := e.ztunnelOn(ctx, t, server.Spec.NodeName)
	before := e.configDump(ctx, t, z).WorkloadState

	dir := t.TempDir()
	ca := e.meshCA(ctx, t)
	foreign := selfSignedCA(t, "attacker")
	now := time.Now()
	clientID := "spiffe://cluster.local/ns/demo/sa/client"
	attackerID := "spiffe://cluster.local/ns/weft-attack/sa/attacker"
	addr := net.JoinHostPort(server.Status.PodIP, "15008")
	authority := net.JoinHostPort(server.Status.PodIP, "9000")
	forged := []string{
		"Forwarded: for=" + client.Status.PodIP + ";by=" + clientID,
		"Baggage: k8s.namespace.name=demo,k8s.deployment.name=client,service.account=client,spiffe=" + clientID,
		"X-Forwarded-Client-Cert: By=" + clientID + ";URI=" + clientID,
	}
	type attack struct {
		name      string
		cert, key string
		headers   []string
		// refusedAt is the stage the attempt must stop at; "" means it
		// must get through (the control).
		refusedAt probe.Stage
	}
	mint := func(ca signer, id string, nb, na time.Time) (string, string) { return ca.mint(t, dir, id, nb, na) }
	valid := func(ca signer, id string) (string, string) {
		return mint(ca, id, now.Add(-time.Hour), now.Add(time.Hour))
	}
	attacks := []attack{{name: "control: a mesh certificate for the allowed identity"}}
	attacks[0].cert, attacks[0].key = valid(ca, clientID)
	add := func(name string, cert, key string, refusedAt probe.Stage, headers ...string) {
		attacks = append(attacks, attack{name, cert, key, headers, refusedAt})
	}
	add("no client certificate", "", "", probe.StageTLS)
	c, k := valid(foreign, clientID)
	add("self-signed CA, claiming the client's identity", c, k, probe.StageTLS)
	c, k = valid(foreign, "spiffe://evil.example/ns/demo/sa/client")
	add("another trust domain's CA", c, k, probe.StageTLS)
	c, k = valid(ca, "spiffe://evil.example/ns/demo/sa/client")
	add("the mesh CA, naming another trust domain", c, k, probe.StageTLS)
	c, k = mint(ca, clientID, now.Add(-48*time.Hour), now.Add(-time.Hour))
	add("expired mesh certificate for the client", c, k, probe.StageTLS)
	c, k = mint(ca, clientID, now.Add(time.Hour), now.Add(48*time.Hour))
	add("not-yet-valid mesh certificate for the client", c, k, probe.StageTLS)
	c, k = valid(ca, attackerID)
	add("valid certificate for another identity, no claim", c, k, probe.StageConnect)
	add("valid certificate for another identity, forged forwarded/baggage/XFCC claiming the client", c, k, probe.StageConnect, forged...)

	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			res := e.hbone(ctx, t, attacker, addr, authority, a.cert, a.key, a.headers...)
			t.Logf("%s: %+v", a.name, res)
			switch {
			case a.refusedAt == "" && res.Stage != probe.StageData:
				t.Errorf("control did not get through (%+v): the refusals below prove nothing", res)
			case a.refusedAt != "" && res.Stage == probe.StageData:
				t.Errorf("ATTACK GOT IN: the application answered %q", res.Data)
			case a.refusedAt != "" && res.Stage != a.refusedAt:
				t.Errorf("refused at %s, want at %s (%+v)", res.Stage, a.refusedAt, res)
			}
		})
	}
	// A CONNECT to a port or address other than the pod's own: ztunnel
	// must not be an open relay even for a trusted identity.
	t.Run("control certificate cannot relay elsewhere", func(t *testing.T) {
		for _, target := range []string{"127.0.0.1:15000", net.JoinHostPort(z.Status.PodIP, "15000"), net.JoinHostPort(client.Status.PodIP, "8080")} {
			res := e.hbone(ctx, t, attacker, addr, target, attacks[0].cert, attacks[0].key)
			t.Logf("CONNECT %s via %s: %+v", target, addr, res)
			if res.Stage == probe.StageData || res.Stage == probe.StageTunnel {
				t.Errorf("CONNECT %s through %s's HBONE port was accepted: %+v", target, server.Name, res)
			}
		}
	})

	after := e.configDump(ctx, t, z).WorkloadState
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("ztunnel's workload state changed across the attacks:\nbefore %v\nafter  %v", before, after)
	}
	e.expect(ctx, t, "the allowed client still gets in", true, client, "--tcp", authority)
}

// TestAdminSurfaceUnreachable: ztunnel's admin port (15000) answers only
// on its own loopback: not from a pod outside the mesh, not from an
// enrolled pod (whose network namespace ztunnel has listeners in), and
// the ZDS socket on the node is not open to other users.
func TestAdminSurfaceUnreachable(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, _ := e.clientAndServer(ctx, t)
	e.useNamespace(ctx, t, "weft-outsider")
	outsider := e.startPod(ctx, t, "weft-outsider", "outsider", "outsider", client.Spec.NodeName, nil)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	z := e.ztunnelOn(ctx, t, client.Spec.NodeName)
	if out := e.ztunnelGet(ctx, t, z, 15000, "/config_dump"); !strings.Contains(out, "workloadState") {
		t.Fatalf("control: ztunnel's admin answers on its own loopback: %.200s", out)
	}
	for _, from := range []corev1.Pod{outsider, client} {
		for _, u := range []string{
			"http://" + net.JoinHostPort(z.Status.PodIP, "15000") + "/config_dump",
			"http://127.0.0.1:15000/config_dump",
			"http://" + net.JoinHostPort(from.Status.PodIP, "15000") + "/config_dump",
		} {
			out, err := e.exec(ctx, from.Namespace, from.Name, "curl", "-s", "--max-time", "3", u)
			if err == nil || strings.Contains(out, "workload") {
				t.Errorf("from %s/%s, %s answered: %.200s", from.Namespace, from.Name, u, out)
			}
		}
	}

	// The ZDS socket: on each node's host path, owned by root and not
	// open to other users; and no pod but ztunnel and the CNI agent
	// mounts its directory.
	for _, n := range e.c.Plan.Nodes {
		sock := filepath.Join(e.c.Dir, "nodes", n.Name, "root", "var", "run", "ztunnel", "ztunnel.sock")
		for _, p := range []string{filepath.Dir(sock), sock} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Errorf("ZDS path on %s: %v", n.Name, err)
				continue
			}
			if fi.Mode().Perm()&0o002 != 0 {
				t.Errorf("%s on %s is writable by any user (%v)", filepath.Base(p), n.Name, fi.Mode())
			}
			t.Logf("%s on %s: %v", filepath.Base(p), n.Name, fi.Mode())
		}
	}
	pods, err := e.cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, v := range p.Spec.Volumes {
			if v.HostPath == nil || !strings.HasPrefix(v.HostPath.Path, "/var/run/ztunnel") {
				continue
			}
			if app := p.Labels["app"]; p.Namespace != "weft-system" || (app != "ztunnel" && app != "weft-cni-agent") {
				t.Errorf("pod %s/%s mounts the ZDS directory %s", p.Namespace, p.Name, v.HostPath.Path)
			}
		}
	}
}

// TestDenyBypass: a DENY of the client at the echo pods holds whichever
// way the client addresses them: pod IP, service VIP, or the pod's HBONE
// port directly in plaintext.
func TestDenyBypass(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	e.labelNamespace(ctx, t, "demo", "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, "demo", "") })
	e.assertNoPlaintext(ctx, t, client, server)
	svc, err := e.cs.CoreV1().Services("demo").Get(ctx, "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ways := map[string][]string{
		"pod IP":      {"--tcp", net.JoinHostPort(server.Status.PodIP, "9000")},
		"service VIP": {"--tcp", net.JoinHostPort(svc.Spec.ClusterIP, "9000")},
		"pod IP HTTP": {"--url", httpURL(server, "/deny")},
		"VIP HTTP":    {"--url", "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "8080") + "/deny"},
	}
	for name, args := range ways {
		e.expect(ctx, t, "no policy: "+name+" allowed", true, client, args...)
	}
	e.applyYAML(ctx, t, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-client, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/demo/sa/client"]}
`)
	for name, args := range ways {
		e.expect(ctx, t, "DENY: "+name+" refused", false, client, args...)
	}
	// Straight at the pod's HBONE port from an enrolled client, as plain
	// TCP: no tunnel, so nothing may reach the application.
	out, err := e.exec(ctx, client.Namespace, client.Name, "curl", "-s", "--max-time", "3", "http://"+net.JoinHostPort(server.Status.PodIP, "15008")+"/")
	if err == nil && strings.Contains(out, "pod") {
		t.Errorf("plain HTTP to %s:15008 reached the application: %.200s", server.Name, out)
	}
}

// TestCAImpersonation: a node proxy's token lets it obtain the identities
// of pods on its own node only. Node 1's ztunnel token cannot get an
// identity that runs only on node 2, nor one no pod has, nor one of
// another trust domain; an unbound ztunnel token, a workload's token and a
// token for another audience cannot impersonate at all. Control: node 1's
// ztunnel token gets the identity of a pod on node 1.
func TestCAImpersonation(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	client, server := e.clientAndServer(ctx, t)
	here, there := client.Spec.NodeName, server.Spec.NodeName
	lonely := e.startPod(ctx, t, "demo", "lonely", "lonely", there, nil)
	z := e.ztunnelOn(ctx, t, here)
	dir := t.TempDir()

	cm, err := e.cs.CoreV1().ConfigMaps("weft-system").Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.pem")
	if err := os.WriteFile(root, []byte(cm.Data["root-cert.pem"]), 0o600); err != nil {
		t.Fatal(err)
	}
	istiod := e.readyPods(ctx, t, "weft-system", "app=istiod-lite", 1)[0]
	token := func(name, ns, sa, audience string, bound *corev1.Pod) string {
		args := []string{"-n", ns, "create", "token", sa, "--audience", audience, "--duration", "10m"}
		if bound != nil {
			args = append(args, "--bound-object-kind", "Pod", "--bound-object-name", bound.Name, "--bound-object-uid", string(bound.UID))
		}
		out, err := e.kubectl(ctx, nil, args...)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.TrimSpace(out)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ztHere := token("zt-here", "weft-system", "ztunnel", "istio-ca", &z)
	ztUnbound := token("zt-unbound", "weft-system", "ztunnel", "istio-ca", nil)
	ztOtherAud := token("zt-other-aud", "weft-system", "ztunnel", "api", &z)
	clientTok := token("client", "demo", "client", "istio-ca", &client)

	clientID := "spiffe://cluster.local/ns/demo/sa/client"
	cases := []struct {
		name        string
		token, id   string
		impersonate bool
		issue       bool
		// logOnly cases are reported, not judged.
		logOnly bool
	}{
		{"control: node proxy asks for a pod on its node", ztHere, clientID, true, true, false},
		{"node proxy asks for an identity that runs only on another node", ztHere, "spiffe://cluster.local/ns/demo/sa/" + lonely.Spec.ServiceAccountName, true, false, false},
		{"node proxy asks for an identity no pod has", ztHere, "spiffe://cluster.local/ns/demo/sa/ghost", true, false, false},
		{"node proxy asks for another trust domain", ztHere, "spiffe://evil.example/ns/demo/sa/client", true, false, false},
		{"node proxy token not bound to a pod", ztUnbound, clientID, true, false, false},
		{"node proxy token for another audience", ztOtherAud, clientID, true, false, false},
		{"workload token impersonating another workload", clientTok, "spiffe://cluster.local/ns/demo/sa/echo", true, false, false},
		{"workload token asking for another identity", clientTok, "spiffe://cluster.local/ns/demo/sa/echo", false, false, false},
		// As in Istio, a workload's own token (any pod can project one
		// for audience istio-ca) gets its own identity: a pod can then
		// speak HBONE itself, without its node's ztunnel.
		{"workload token asking for its own identity (reported)", clientTok, clientID, false, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			argv := []string{e.probeBin(t), "csr", "--ca", net.JoinHostPort(istiod.Status.PodIP, "15012"), "--server-name", "istiod.weft-system.svc",
				"--root", root, "--token", c.token, "--identity", c.id}
			if c.impersonate {
				argv = append(argv, "--impersonate")
			}
			out, err := e.exec(ctx, client.Namespace, client.Name, argv...)
			if err != nil {
				t.Fatal(err)
			}
			var res probe.CSRResult
			if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &res); err != nil {
				t.Fatalf("weft-probe csr output %q: %v", out, err)
			}
			t.Logf("%s: %+v", c.name, res)
			switch {
			case c.logOnly:
			case c.issue && !res.Issued:
				t.Errorf("control refused (%s): the refusals below prove nothing", res.Err)
			case c.issue && res.Leaf != c.id:
				t.Errorf("issued %q, asked for %q", res.Leaf, c.id)
			case !c.issue && res.Issued:
				t.Errorf("CA ISSUED %s to an attacker", res.Leaf)
			}
		})
	}
}

// TestForwardedSpoofViaWaypoint: a pod outside the mesh gets a mesh
// certificate for its own identity with its own token (as any pod can),
// connects straight to a waypoint's HBONE port and sends a Forwarded
// header naming another pod's address. The source address the
// destination application sees must not be the forged one. (The waypoint
// itself does take the header as the flow's source address; see the
// report on waypoint/inbound.)
func TestForwardedSpoofViaWaypoint(t *testing.T) {
	e := requireEnv(t)
	ctx := testCtx(t)
	const ns, attackNS = "weft-fwd", "weft-fwd-attack"
	victim, _ := e.clientAndServer(ctx, t) // its address is the one forged
	e.useNamespace(ctx, t, ns)
	e.useNamespace(ctx, t, attackNS)
	e.applyYAML(ctx, t, `apiVersion: v1
kind: Service
metadata: {name: fecho, namespace: `+ns+`}
spec:
  selector: {app: fecho}
  ports:
  - {name: tcp, port: 9000}
`)
	fecho := e.startPod(ctx, t, ns, "fecho", "fecho", "", nil)
	mallory := e.startPod(ctx, t, attackNS, "mallory", "mallory", "", nil)
	e.labelNamespace(ctx, t, ns, "ambient")
	t.Cleanup(func() { e.labelNamespace(context.Background(), t, ns, "") })
	e.applyYAML(ctx, t, `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: waypoint, namespace: `+ns+`}
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - {name: mesh, port: 15008, protocol: HBONE}
`)
	if _, err := e.kubectl(ctx, nil, "label", "namespace", ns, "istio.io/use-waypoint=waypoint", "--overwrite"); err != nil {
		t.Fatal(err)
	}
	wp := e.readyPods(ctx, t, ns, "gateway.networking.k8s.io/gateway-name=waypoint", 1)[0]
	svc, err := e.cs.CoreV1().Services(ns).Get(ctx, "fecho", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Mallory's own certificate, from the CA, with her own token.
	dir := t.TempDir()
	tok, err := e.kubectl(ctx, nil, "-n", attackNS, "create", "token", "mallory", "--audience", "istio-ca", "--duration", "10m",
		"--bound-object-kind", "Pod", "--bound-object-name", mallory.Name, "--bound-object-uid", string(mallory.UID))
	if err != nil {
		t.Fatal(err)
	}
	tokFile, root := filepath.Join(dir, "token"), filepath.Join(dir, "root.pem")
	cm, err := e.cs.CoreV1().ConfigMaps("weft-system").Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokFile, []byte(strings.TrimSpace(tok)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root, []byte(cm.Data["root-cert.pem"]), 0o600); err != nil {
		t.Fatal(err)
	}
	istiod := e.readyPods(ctx, t, "weft-system", "app=istiod-lite", 1)[0]
	cert, key := filepath.Join(dir, "mallory.crt"), filepath.Join(dir, "mallory.key")
	out, err := e.exec(ctx, attackNS, mallory.Name, e.probeBin(t), "csr", "--ca", net.JoinHostPort(istiod.Status.PodIP, "15012"),
		"--server-name", "istiod.weft-system.svc", "--root", root, "--token", tokFile,
		"--identity", "spiffe://cluster.local/ns/"+attackNS+"/sa/mallory", "--out-cert", cert, "--out-key", key)
	if err != nil || !strings.Contains(out, `"issued":true`) {
		t.Fatalf("mallory's own certificate: %s %v", out, err)
	}

	// The waypoint serves the Service (Istio's default, waypoint-for
	// service): traffic to the pod IP does not have to pass it, and the
	// destination's ztunnel sees the waypoint itself as the source of
	// what it carries. What must never happen: the forged address
	// reaching the application.
	direct := e.hbone(ctx, t, mallory, net.JoinHostPort(fecho.Status.PodIP, "15008"), net.JoinHostPort(fecho.Status.PodIP, "9000"), cert, key)
	t.Logf("mallory straight to the pod's HBONE port (a service waypoint does not cover pod-IP traffic): %+v", direct)

	addr := net.JoinHostPort(wp.Status.PodIP, "15008")
	authority := net.JoinHostPort(svc.Spec.ClusterIP, "9000")
	forged := victim.Status.PodIP
	var got probe.HBONEResult
	eventually(ctx, t, time.Minute, "the waypoint carries mallory's tunnel to the application", func() error {
		got = e.hbone(ctx, t, mallory, addr, authority, cert, key, "Forwarded: for=\""+forged+":4321\"")
		if got.Stage != probe.StageData {
			return fmt.Errorf("%+v", got)
		}
		return nil
	})
	var greeting struct {
		Source string `json:"source"`
	}
	if err := json.Unmarshal([]byte(got.Data), &greeting); err != nil {
		t.Fatalf("greeting %q: %v", got.Data, err)
	}
	host, _, _ := net.SplitHostPort(greeting.Source)
	t.Logf("mallory (%s) via the waypoint (%s) with Forwarded for=%s: the application saw source %s", mallory.Status.PodIP, wp.Status.PodIP, forged, greeting.Source)
	if host == forged {
		t.Errorf("FORGED SOURCE ACCEPTED: the application saw %s (another pod's address) as the source of mallory's connection; "+
			"waypoint/inbound/server.go takes Forwarded from any HBONE peer and ztunnel's inbound (ztunnel/proxy/inbound.go) hands it to the app", greeting.Source)
	}
}
