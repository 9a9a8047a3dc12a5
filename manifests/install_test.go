package manifests

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

const ns = "weft-system"

// clusterScoped are the kinds the install may create outside weft-system.
var clusterScoped = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "ClusterRole": true,
	"ClusterRoleBinding": true,
}

func TestInstallParsesAndStaysInItsNamespace(t *testing.T) {
	objs := renderInstall(t)
	all := typed(t, objs)
	for _, u := range objs {
		if clusterScoped[u.GetKind()] {
			if u.GetNamespace() != "" {
				t.Errorf("%s %s has namespace %q", u.GetKind(), u.GetName(), u.GetNamespace())
			}
		} else if u.GetNamespace() != ns {
			t.Errorf("%s %s is in namespace %q, want %s", u.GetKind(), u.GetName(), u.GetNamespace(), ns)
		}
		if u.GetLabels()["app.kubernetes.io/part-of"] != "weft" {
			t.Errorf("%s %s lacks the part-of label", u.GetKind(), u.GetName())
		}
	}
	var crdNames []string
	for _, o := range all {
		if c, ok := o.(*apiextensionsv1.CustomResourceDefinition); ok {
			crdNames = append(crdNames, c.Name)
		}
	}
	for _, want := range []string{
		"authorizationpolicies.security.istio.io", "peerauthentications.security.istio.io",
		"gateways.gateway.networking.k8s.io", "gatewayclasses.gateway.networking.k8s.io",
		"httproutes.gateway.networking.k8s.io",
	} {
		if !slices.Contains(crdNames, want) {
			t.Errorf("CRD %s is not installed (have %v)", want, crdNames)
		}
	}
	// One apply on a fresh cluster: a custom resource applied with its CRD
	// fails ("no matches for kind"), so the install holds none; istiod-lite
	// creates the istio-waypoint GatewayClass itself.
	groups := map[string]bool{}
	for _, o := range all {
		if c, ok := o.(*apiextensionsv1.CustomResourceDefinition); ok {
			groups[c.Spec.Group] = true
		}
	}
	for _, u := range objs {
		if g := u.GroupVersionKind().Group; groups[g] {
			t.Errorf("%s %s is a custom resource of %s: a single apply with its CRD fails", u.GetKind(), u.GetName(), g)
		}
	}
	nsObj := get[*corev1.Namespace](t, all, "Namespace//"+ns)
	if nsObj.Labels["istio.io/dataplane-mode"] == "ambient" {
		t.Error("weft-system must never be enrolled")
	}
}

// podSpecs returns every workload's pod template by "Kind/name".
func podSpecs(all map[string]runtime.Object) map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, o := range all {
		switch w := o.(type) {
		case *appsv1.Deployment:
			out["Deployment/"+w.Name] = &w.Spec.Template
		case *appsv1.DaemonSet:
			out["DaemonSet/"+w.Name] = &w.Spec.Template
		case *appsv1.StatefulSet:
			out["StatefulSet/"+w.Name] = &w.Spec.Template
		}
	}
	return out
}

func allContainers(p *corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container(nil), p.InitContainers...), p.Containers...)
}

func checkWorkloads(t *testing.T, all map[string]runtime.Object, imagePrefix string) {
	t.Helper()
	pods := podSpecs(all)
	if len(pods) == 0 {
		t.Fatal("no workloads rendered")
	}
	for name, tmpl := range pods {
		p := &tmpl.Spec
		for _, c := range allContainers(p) {
			repo, tag, ok := strings.Cut(c.Image, ":")
			if !strings.HasPrefix(repo, imagePrefix) || !ok || tag == "" {
				t.Errorf("%s: container %s image %q, want %s...:<tag>", name, c.Name, c.Image, imagePrefix)
			}
			vols := map[string]bool{}
			for _, v := range p.Volumes {
				vols[v.Name] = true
			}
			for _, m := range c.VolumeMounts {
				if !vols[m.Name] {
					t.Errorf("%s: container %s mounts undefined volume %s", name, c.Name, m.Name)
				}
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("%s: container %s has no cpu and memory requests", name, c.Name)
			}
		}
		for _, c := range p.Containers {
			if c.ReadinessProbe == nil {
				t.Errorf("%s: container %s has no readiness probe", name, c.Name)
				continue
			}
			if g := c.ReadinessProbe.HTTPGet; g != nil && !declaresPort(c, g.Port.IntValue()) {
				t.Errorf("%s: container %s probes port %s it does not declare", name, c.Name, g.Port.String())
			}
		}
		sa := p.ServiceAccountName
		if sa == "" {
			t.Errorf("%s: no serviceAccountName (the default account must not be used)", name)
		} else if _, ok := all["ServiceAccount/"+tmpl.Namespace+"/"+sa]; !ok {
			if _, ok := findSA(all, sa); !ok {
				t.Errorf("%s: service account %s is not part of the manifests", name, sa)
			}
		}
	}
}

func findSA(all map[string]runtime.Object, name string) (*corev1.ServiceAccount, bool) {
	for _, o := range all {
		if sa, ok := o.(*corev1.ServiceAccount); ok && sa.Name == name {
			return sa, true
		}
	}
	return nil, false
}

func declaresPort(c corev1.Container, port int) bool {
	for _, p := range c.Ports {
		if int(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

func TestInstallWorkloads(t *testing.T) {
	checkWorkloads(t, typed(t, renderInstall(t)), "weft/")
}

func TestIstiodLite(t *testing.T) {
	all := typed(t, renderInstall(t))
	d := get[*appsv1.Deployment](t, all, "Deployment/"+ns+"/istiod-lite")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", d.Spec.Replicas)
	}
	ru := d.Spec.Strategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: want maxUnavailable 0", ru)
	}
	p := d.Spec.Template.Spec
	if sc := p.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("istiod-lite must run as non-root")
	}
	c := p.Containers[0]
	rp := c.ReadinessProbe
	if rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/ready" || rp.HTTPGet.Port.IntValue() != 15014 {
		t.Errorf("readiness probe %+v, want GET :15014/ready", rp)
	}
	if !hasCapDropAll(c) || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Error("istiod-lite must drop every capability and forbid privilege escalation")
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("istiod-lite has no memory limit")
	}
	// Its namespace names the CA Secrets, the ztunnel service account it
	// trusts (<ns>/ztunnel) and its serving certificate (istiod.<ns>.svc);
	// the default would be istio-system.
	podNS := false
	for _, e := range c.Env {
		podNS = podNS || (e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.namespace")
	}
	if !podNS {
		t.Error("istiod-lite must get POD_NAMESPACE from the downward API")
	}

	pdb := get[*policyv1.PodDisruptionBudget](t, all, "PodDisruptionBudget/"+ns+"/istiod-lite")
	if !selects(t, pdb.Spec.Selector, d.Spec.Template.Labels) {
		t.Errorf("PDB selector %v does not select the istiod-lite pods", pdb.Spec.Selector)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PDB minAvailable %v: want at least 1 and below the replicas", pdb.Spec.MinAvailable)
	}

	svc := get[*corev1.Service](t, all, "Service/"+ns+"/istiod")
	if !selects(t, metav1.SetAsLabelSelector(svc.Spec.Selector), d.Spec.Template.Labels) {
		t.Errorf("Service selector %v does not select the istiod-lite pods", svc.Spec.Selector)
	}
	var ports []int32
	for _, sp := range svc.Spec.Ports {
		ports = append(ports, sp.Port)
		if !declaresPort(c, sp.TargetPort.IntValue()) {
			t.Errorf("Service port %d targets %s, which the pod does not declare", sp.Port, sp.TargetPort.String())
		}
	}
	if diff := cmp.Diff([]int32{15010, 15012, 15014}, ports); diff != "" {
		t.Errorf("Service ports (-want +got):\n%s", diff)
	}
}

func selects(t *testing.T, ls *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		t.Fatal(err)
	}
	return !sel.Empty() && sel.Matches(labels.Set(podLabels))
}

func hasCapDropAll(c corev1.Container) bool {
	sc := c.SecurityContext
	return sc != nil && sc.Capabilities != nil && slices.Contains(sc.Capabilities.Drop, "ALL")
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func hostPathMount(p corev1.PodSpec, c corev1.Container, hostPath string) (string, bool) {
	for _, v := range p.Volumes {
		if v.HostPath == nil || v.HostPath.Path != hostPath {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == v.Name {
				return m.MountPath, true
			}
		}
	}
	return "", false
}

func TestZtunnelDaemonSet(t *testing.T) {
	all := typed(t, renderInstall(t))
	ds := get[*appsv1.DaemonSet](t, all, "DaemonSet/"+ns+"/ztunnel")
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil ||
		ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 1 || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("update strategy %+v, want RollingUpdate maxSurge 1 maxUnavailable 0", ds.Spec.UpdateStrategy)
	}
	p := ds.Spec.Template.Spec
	if p.HostNetwork || p.HostPID || p.HostIPC {
		t.Error("ztunnel must not share the host's network, PID or IPC namespace")
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Error("ztunnel must not get a Kubernetes API token")
	}
	if !slices.ContainsFunc(p.Tolerations, func(tl corev1.Toleration) bool { return tl.Operator == corev1.TolerationOpExists && tl.Key == "" }) {
		t.Error("ztunnel must tolerate every taint (one per node)")
	}
	c := p.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("ztunnel has no capabilities set")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("ztunnel must not be privileged")
	}
	if diff := cmp.Diff([]corev1.Capability{"ALL"}, sc.Capabilities.Drop); diff != "" {
		t.Errorf("dropped capabilities (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.Capability{"NET_ADMIN", "SYS_ADMIN", "NET_RAW"}, sc.Capabilities.Add); diff != "" {
		t.Errorf("added capabilities (-want +got):\n%s", diff)
	}
	if mp, ok := hostPathMount(p, c, "/var/run/ztunnel"); !ok || mp != "/var/run/ztunnel" {
		t.Errorf("hostPath /var/run/ztunnel mounted at %q", mp)
	}
	if !strings.HasPrefix(envValue(c, "ZDS_SOCKET"), "/var/run/ztunnel/") {
		t.Errorf("ZDS_SOCKET %q is not in the shared hostPath", envValue(c, "ZDS_SOCKET"))
	}
	var audience, tokenDir string
	for _, v := range p.Volumes {
		if v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			if s.ServiceAccountToken != nil {
				audience = s.ServiceAccountToken.Audience
				for _, m := range c.VolumeMounts {
					if m.Name == v.Name {
						tokenDir = m.MountPath + "/" + s.ServiceAccountToken.Path
					}
				}
			}
		}
	}
	if audience != "istio-ca" {
		t.Errorf("projected token audience %q, want istio-ca", audience)
	}
	if tokenDir != envValue(c, "TOKEN_FILE") {
		t.Errorf("TOKEN_FILE %q, token mounted at %q", envValue(c, "TOKEN_FILE"), tokenDir)
	}
	drain, err := time.ParseDuration(envValue(c, "DRAIN_TIMEOUT"))
	if err != nil {
		t.Fatalf("DRAIN_TIMEOUT: %v", err)
	}
	if g := p.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain {
		t.Errorf("terminationGracePeriodSeconds %v must exceed the drain timeout %s", g, drain)
	}
	for _, k := range []string{"XDS_ADDRESS", "CA_ADDRESS"} {
		if v := envValue(c, k); v != "istiod."+ns+".svc:15012" {
			t.Errorf("%s = %q, want the istiod Service's TLS port", k, v)
		}
	}
	if rp := c.ReadinessProbe; rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/healthz/ready" || rp.HTTPGet.Port.IntValue() != 15021 {
		t.Errorf("readiness probe %+v, want GET :15021/healthz/ready", rp)
	}
}

func TestCNIAgentDaemonSet(t *testing.T) {
	all := typed(t, renderInstall(t))
	ds := get[*appsv1.DaemonSet](t, all, "DaemonSet/"+ns+"/weft-cni-agent")
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		t.Errorf("update strategy %s", ds.Spec.UpdateStrategy.Type)
	}
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.MaxSurge != nil && ru.MaxSurge.IntValue() != 0 {
		t.Error("two host-network agents cannot run side by side: maxSurge must be 0")
	}
	p := ds.Spec.Template.Spec
	if !p.HostNetwork {
		t.Error("the CNI agent must use the host network")
	}
	c := p.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
		t.Error("the CNI agent must be privileged")
	}
	if len(c.Args) == 0 || c.Args[0] != "agent" {
		t.Errorf("agent container args %v, want `weft-cni-agent agent ...`", c.Args)
	}
	for _, hp := range []string{"/var/run/ztunnel", "/var/run/weft", "/var/run/netns"} {
		if _, ok := hostPathMount(p, c, hp); !ok {
			t.Errorf("the agent does not mount hostPath %s", hp)
		}
	}
	if mp, _ := hostPathMount(p, c, "/var/run/ztunnel"); mp != "/var/run/ztunnel" {
		t.Errorf("hostPath /var/run/ztunnel mounted at %q, want the same path as ztunnel", mp)
	}
	if mp, _ := hostPathMount(p, c, "/var/run/weft"); mp != "/var/run/weft" {
		t.Errorf("hostPath /var/run/weft mounted at %q: the plugin on the node dials the same path", mp)
	}
	if !slices.Contains(c.Args, "--zds-socket=/var/run/ztunnel/ztunnel.sock") {
		t.Errorf("agent args %v do not serve ZDS where ztunnel connects", c.Args)
	}
	if !p.HostPID {
		t.Error("the agent finds running pods' network namespaces in the host's /proc: hostPID is required")
	}
	if len(p.InitContainers) != 1 {
		t.Fatalf("want one installer sidecar, got %d init containers", len(p.InitContainers))
	}
	inst := p.InitContainers[0]
	if inst.RestartPolicy == nil || *inst.RestartPolicy != corev1.ContainerRestartPolicyAlways || len(inst.Args) == 0 || inst.Args[0] != "install" {
		t.Errorf("installer %+v: want a sidecar (restartPolicy Always) running `weft-cni-agent install`", inst)
	}
	for _, hp := range []string{"/opt/cni/bin", "/etc/cni/net.d"} {
		if _, ok := hostPathMount(p, inst, hp); !ok {
			t.Errorf("the installer does not mount hostPath %s", hp)
		}
	}
}

// allows reports whether rules grant verb on group/resource, and whether
// the grant is limited to resourceNames.
func allows(rules []rbacv1.PolicyRule, group, resource, verb string) (granted, limited bool) {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			if len(r.ResourceNames) == 0 {
				return true, false
			}
			granted, limited = true, true
		}
	}
	return granted, limited
}

// grants collects the rules bound to a service account, cluster-wide and
// by namespace ("" for cluster roles).
func grants(t *testing.T, all map[string]runtime.Object, sa string) map[string][]rbacv1.PolicyRule {
	t.Helper()
	out := map[string][]rbacv1.PolicyRule{}
	bound := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ns
		})
	}
	for _, o := range all {
		switch b := o.(type) {
		case *rbacv1.ClusterRoleBinding:
			if bound(b.Subjects) {
				out[""] = append(out[""], get[*rbacv1.ClusterRole](t, all, "ClusterRole//"+b.RoleRef.Name).Rules...)
			}
		case *rbacv1.RoleBinding:
			if !bound(b.Subjects) {
				continue
			}
			if b.RoleRef.Kind == "ClusterRole" {
				out[b.Namespace] = append(out[b.Namespace], get[*rbacv1.ClusterRole](t, all, "ClusterRole//"+b.RoleRef.Name).Rules...)
			} else {
				out[b.Namespace] = append(out[b.Namespace], get[*rbacv1.Role](t, all, "Role/"+b.Namespace+"/"+b.RoleRef.Name).Rules...)
			}
		}
	}
	return out
}

func TestRBACLeastPrivilege(t *testing.T) {
	all := typed(t, renderInstall(t))
	// No wildcard anywhere.
	for key, o := range all {
		var rules []rbacv1.PolicyRule
		switch r := o.(type) {
		case *rbacv1.ClusterRole:
			rules = r.Rules
			for _, rule := range r.Rules {
				if slices.Contains(rule.Resources, "secrets") {
					t.Errorf("%s grants secrets cluster-wide", key)
				}
			}
		case *rbacv1.Role:
			rules = r.Rules
		}
		for _, r := range rules {
			for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups, r.ResourceNames} {
				if slices.Contains(list, "*") {
					t.Errorf("%s has a wildcard in %+v", key, r)
				}
			}
		}
	}

	t.Run("ztunnel has none", func(t *testing.T) {
		if g := grants(t, all, "ztunnel"); len(g) != 0 {
			t.Errorf("ztunnel is bound to %v", g)
		}
		sa := get[*corev1.ServiceAccount](t, all, "ServiceAccount/"+ns+"/ztunnel")
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Error("the ztunnel service account must not automount an API token")
		}
	})

	t.Run("istiod-lite", func(t *testing.T) {
		g := grants(t, all, "istiod-lite")
		need := []struct{ scope, group, resource, verb string }{
			{"", "", "pods", "watch"}, {"", "", "services", "watch"}, {"", "", "namespaces", "watch"},
			{"", "", "serviceaccounts", "watch"}, {"", "", "nodes", "watch"},
			{"", "discovery.k8s.io", "endpointslices", "watch"},
			{"", "security.istio.io", "authorizationpolicies", "watch"},
			{"", "security.istio.io", "peerauthentications", "watch"},
			{"", "gateway.networking.k8s.io", "gateways", "watch"},
			{"", "gateway.networking.k8s.io", "gateways/status", "update"},
			{"", "gateway.networking.k8s.io", "gatewayclasses", "get"},
			{"", "gateway.networking.k8s.io", "gatewayclasses", "create"},
			{"", "gateway.networking.k8s.io", "gatewayclasses/status", "update"},
			{"", "authentication.k8s.io", "tokenreviews", "create"},
			{"", "", "configmaps", "create"}, {"", "", "configmaps", "update"}, {"", "", "configmaps", "watch"},
			{"", "", "serviceaccounts", "create"}, {"", "", "services", "create"},
			{"", "apps", "deployments", "create"},
			// The waypoint controller: server-side apply, and deletes.
			{"", "", "serviceaccounts", "patch"}, {"", "", "services", "patch"}, {"", "apps", "deployments", "patch"},
			{"", "", "serviceaccounts", "delete"}, {"", "", "services", "delete"}, {"", "apps", "deployments", "delete"},
			{"", "apps", "deployments", "watch"},
			{ns, "", "secrets", "create"},
		}
		for _, n := range need {
			if ok, _ := allows(g[n.scope], n.group, n.resource, n.verb); !ok {
				t.Errorf("istiod-lite cannot %s %s.%s in %q", n.verb, n.resource, n.group, n.scope)
			}
		}
		if ok, limited := allows(g[ns], "", "secrets", "get"); !ok || !limited {
			t.Errorf("istiod-lite secret reads: granted %v, limited to named secrets %v", ok, limited)
		}
		for _, r := range g[ns] {
			if slices.Contains(r.Resources, "secrets") && len(r.ResourceNames) > 0 {
				if diff := cmp.Diff([]string{"istio-ca-secret", "cacerts"}, r.ResourceNames); diff != "" {
					t.Errorf("secret names (-want +got):\n%s", diff)
				}
			}
		}
		for _, v := range []string{"list", "watch", "update", "delete"} {
			if ok, _ := allows(g[ns], "", "secrets", v); ok {
				t.Errorf("istiod-lite may %s secrets", v)
			}
		}
		for scope := range g {
			if scope != "" && scope != ns {
				t.Errorf("istiod-lite has a Role in %s", scope)
			}
		}
		// Server-side apply needs no update; status is the only update.
		for _, r := range []struct{ group, resource string }{{"", "serviceaccounts"}, {"", "services"}, {"apps", "deployments"}, {"gateway.networking.k8s.io", "gateways"}} {
			if ok, _ := allows(g[""], r.group, r.resource, "update"); ok {
				t.Errorf("istiod-lite may update %s.%s", r.resource, r.group)
			}
		}
	})

	t.Run("cni agent", func(t *testing.T) {
		g := grants(t, all, "weft-cni-agent")
		if len(g) != 1 {
			t.Fatalf("the agent's grants span %d scopes, want one cluster role", len(g))
		}
		type grant struct{ Group, Resource, Verb string }
		var got []grant
		for _, r := range g[""] {
			for _, gr := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						got = append(got, grant{gr, res, v})
					}
				}
			}
		}
		slices.SortFunc(got, func(a, b grant) int {
			return strings.Compare(a.Group+"/"+a.Resource+"/"+a.Verb, b.Group+"/"+b.Resource+"/"+b.Verb)
		})
		want := []grant{
			{"", "events", "create"}, {"", "events", "patch"},
			{"", "namespaces", "get"}, {"", "namespaces", "list"}, {"", "namespaces", "watch"},
			{"", "pods", "get"}, {"", "pods", "list"}, {"", "pods/status", "patch"}, {"", "pods", "watch"},
			{"events.k8s.io", "events", "create"}, {"events.k8s.io", "events", "patch"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("agent grants (-want +got):\n%s", diff)
		}
	})
}
