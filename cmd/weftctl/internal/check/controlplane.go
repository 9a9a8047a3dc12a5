package check

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/cmd/weftctl/internal/zdump"
)

// RootCertConfigMap is where istiod-lite publishes the mesh root.
const RootCertConfigMap = "istio-ca-root-cert"

func controlPlane(ctx context.Context, r *run) (Category, bool) {
	c := Category{Name: "control-plane"}
	ns := r.d.SystemNS
	if _, err := r.d.Kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		c.Results = append(c.Results, fail("control plane namespace exists", fmt.Sprintf("namespace %s: %v", ns, err),
			"install Weft (`kubectl apply -k manifests`), or pass -i/--weft-namespace if it lives elsewhere"))
		return c, true
	}
	c.Results = append(c.Results, ok("control plane namespace exists"), istiodReady(ctx, r), rootCert(ctx, r), ztunnelsSynced(ctx, r))
	return c, false
}

func istiodReady(ctx context.Context, r *run) Result {
	const desc = "istiod-lite is ready"
	ns := r.d.SystemNS
	dep, err := r.d.Kube.AppsV1().Deployments(ns).Get(ctx, "istiod-lite", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fail(desc, "deployment istiod-lite not found in "+ns, "install Weft's control plane: `kubectl apply -k manifests`")
	}
	if err != nil {
		return fail(desc, err.Error(), "check your RBAC rights to read deployments in "+ns)
	}
	want := int32(1)
	if dep.Spec.Replicas != nil {
		want = *dep.Spec.Replicas
	}
	if want == 0 {
		return fail(desc, "istiod-lite is scaled to zero: no ztunnel receives configuration or certificates",
			fmt.Sprintf("`kubectl -n %s scale deployment istiod-lite --replicas=1`", ns))
	}
	if dep.Status.ReadyReplicas == 0 {
		return fail(desc, fmt.Sprintf("0/%d replicas ready", want),
			fmt.Sprintf("`kubectl -n %s describe deployment istiod-lite` and `kubectl -n %s logs deploy/istiod-lite`", ns, ns))
	}
	if dep.Status.ReadyReplicas < want {
		return warn(desc, fmt.Sprintf("%d/%d replicas ready", dep.Status.ReadyReplicas, want),
			fmt.Sprintf("`kubectl -n %s get pods -l %s`", ns, kube.IstiodSelector))
	}
	return ok(desc)
}

// rootPEM reads and parses the published root in namespace ns.
func rootPEM(ctx context.Context, r *run, ns string) (*x509.Certificate, error) {
	cm, err := r.d.Kube.CoreV1().ConfigMaps(ns).Get(ctx, RootCertConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode([]byte(cm.Data["root-cert.pem"]))
	if b == nil {
		return nil, fmt.Errorf("configmap %s/%s has no PEM in root-cert.pem", ns, RootCertConfigMap)
	}
	return x509.ParseCertificate(b.Bytes)
}

func rootCert(ctx context.Context, r *run) Result {
	const desc = "root certificate is published"
	cert, err := rootPEM(ctx, r, r.d.SystemNS)
	if err != nil {
		return fail(desc, err.Error(), fmt.Sprintf("istiod-lite publishes ConfigMap %s; check it runs: `kubectl -n %s logs deploy/istiod-lite`", RootCertConfigMap, r.d.SystemNS))
	}
	if !r.d.Now.Before(cert.NotAfter) {
		return fail(desc, fmt.Sprintf("root certificate expired at %s", cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z")), "rotate the mesh root CA (the istio-ca-secret in "+r.d.SystemNS+")")
	}
	if cert.NotAfter.Sub(r.d.Now) < 30*24*60*60*1e9 {
		return warn(desc, fmt.Sprintf("root certificate expires at %s", cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z")), "plan a root rotation")
	}
	return ok(desc)
}

// dump fetches (once) the config dump of ztunnel pod p.
func (r *run) dump(ctx context.Context, p *corev1.Pod) dumpResult {
	if d, ok := r.dumps[p.Spec.NodeName]; ok {
		return d
	}
	res := dumpResult{pod: p.Name}
	body, err := r.d.HTTP.Get(ctx, p.Namespace, p.Name, kube.ZtunnelAdminPort, "/config_dump")
	if err == nil {
		res.dump, err = zdump.Parse(body)
	}
	res.err = err
	r.dumps[p.Spec.NodeName] = res
	return res
}

func ztunnelsSynced(ctx context.Context, r *run) Result {
	const desc = "all ztunnels are connected to istiod-lite with current config"
	pods, err := kube.PodsBySelector(ctx, r.d.Kube, r.d.SystemNS, kube.ZtunnelSelector)
	if err != nil {
		return fail(desc, err.Error(), "check your RBAC rights to list pods in "+r.d.SystemNS)
	}
	if len(pods) == 0 {
		return fail(desc, "no ztunnel pods", "install the ztunnel DaemonSet: `kubectl apply -k manifests`")
	}
	var problems []string
	versions := map[string]map[string][]string{} // type -> resource count -> nodes
	var silent, stale, nacks []string
	for i := range pods {
		p := &pods[i]
		if !kube.PodReady(p) {
			continue // reported by the data-plane checks
		}
		res := r.dump(ctx, p)
		if res.err != nil {
			silent = append(silent, fmt.Sprintf("%s (node %s): %v", p.Name, p.Spec.NodeName, res.err))
			continue
		}
		x := res.dump.XDS
		if x == nil || !x.Connected {
			problems = append(problems, fmt.Sprintf("ztunnel on %s is not connected to istiod-lite", p.Spec.NodeName))
			continue
		}
		for t, ts := range x.Types {
			if ts.LastNACK != "" {
				nacks = append(nacks, fmt.Sprintf("ztunnel on %s rejected %s: %s", p.Spec.NodeName, shortType(t), ts.LastNACK))
			}
			if versions[t] == nil {
				versions[t] = map[string][]string{}
			}
			n := strconv.Itoa(ts.Resources)
			versions[t][n] = append(versions[t][n], p.Spec.NodeName)
		}
	}
	// Versions are per istiod-lite replica, so compare what ztunnels hold:
	// every ztunnel subscribes to everything, so counts should agree.
	for t, counts := range versions {
		if len(counts) > 1 {
			var parts []string
			for n, nodes := range counts {
				parts = append(parts, fmt.Sprintf("%s on %s", n, strings.Join(nodes, ",")))
			}
			sort.Strings(parts)
			stale = append(stale, fmt.Sprintf("ztunnels hold different numbers of %s resources: %s", shortType(t), strings.Join(parts, "; ")))
		}
	}
	sort.Strings(problems)
	if len(silent) > 0 {
		return fail(desc, "ztunnel admin did not answer: "+strings.Join(silent, "\n"),
			fmt.Sprintf("check the pods' logs: `kubectl -n %s logs -l %s`", r.d.SystemNS, kube.ZtunnelSelector))
	}
	if len(nacks) > 0 {
		sort.Strings(nacks)
		return fail(desc, strings.Join(append(nacks, problems...), "\n"),
			"ztunnel rejected configuration istiod-lite sent: fix the resource named above (e.g. `kubectl get authorizationpolicy -A`); istiod-lite should not have sent it, so report it with `weftctl bug-report`")
	}
	if len(problems) > 0 {
		return fail(desc, strings.Join(problems, "\n"),
			fmt.Sprintf("istiod-lite must be reachable from every node: `kubectl -n %s logs deploy/istiod-lite` and `weftctl ztunnel-config all --node NODE`", r.d.SystemNS))
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		return warn(desc, strings.Join(stale, "\n"), "a push may be in flight; if this persists, compare `weftctl ztunnel-config all --node NODE` on the nodes named")
	}
	return ok(desc)
}

func shortType(t string) string {
	if i := strings.LastIndex(t, "."); i >= 0 {
		return t[i+1:]
	}
	return t
}
