package check

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	authv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func kubernetesAPI(ctx context.Context, r *run) (Category, bool) {
	c := Category{Name: "kubernetes-api", Results: []Result{ok("can initialize the client")}}
	v, err := r.d.Kube.Discovery().ServerVersion()
	if err != nil {
		c.Results = append(c.Results, fail("can query the Kubernetes API", err.Error(),
			"check the API server address in your kubeconfig and that the cluster is up (`kubectl get --raw /version`)"))
		return c, true
	}
	c.Results = append(c.Results, ok("can query the Kubernetes API"))
	desc := fmt.Sprintf("is running Kubernetes 1.%d or later", MinKubeMinor)
	minor, err := strconv.Atoi(strings.TrimRight(v.Minor, "+"))
	switch {
	case err != nil || v.Major != "1":
		c.Results = append(c.Results, warn(desc, fmt.Sprintf("cannot parse server version %q.%q", v.Major, v.Minor), "weftctl was tested against Kubernetes 1.30+"))
	case minor < MinKubeMinor:
		c.Results = append(c.Results, fail(desc, fmt.Sprintf("server is %s", v.GitVersion), fmt.Sprintf("upgrade the cluster to Kubernetes 1.%d or later", MinKubeMinor)))
	default:
		c.Results = append(c.Results, ok(desc))
	}
	return c, false
}

// crdSpec is a resource a CRD must serve.
type crdSpec struct{ groupVersion, resource, desc, hint string }

var requiredCRDs = []crdSpec{
	{"security.istio.io/v1", "authorizationpolicies", "AuthorizationPolicy CRD is installed", "install Weft's CRDs: `kubectl apply -k manifests/base/crds`"},
	{"security.istio.io/v1", "peerauthentications", "PeerAuthentication CRD is installed", "install Weft's CRDs: `kubectl apply -k manifests/base/crds`"},
	{"gateway.networking.k8s.io/v1", "gateways", "Gateway API CRDs are installed", "install the Gateway API CRDs: `kubectl apply -k manifests/base/crds`"},
}

func crds(ctx context.Context, r *run) (Category, bool) {
	c := Category{Name: "weft-crds"}
	for _, s := range requiredCRDs {
		if !served(r, s.groupVersion, s.resource) {
			c.Results = append(c.Results, fail(s.desc, fmt.Sprintf("the API server does not serve %s in %s", s.resource, s.groupVersion), s.hint))
			continue
		}
		c.Results = append(c.Results, ok(s.desc))
	}
	const desc = "GatewayClass istio-waypoint exists"
	if _, err := r.d.Gateway.GatewayV1().GatewayClasses().Get(ctx, "istio-waypoint", metav1.GetOptions{}); err != nil {
		msg := err.Error()
		if apierrors.IsNotFound(err) {
			msg = "GatewayClass istio-waypoint not found"
		}
		c.Results = append(c.Results, warn(desc, msg, "istiod-lite creates it at startup: check that istiod-lite is running and that its ClusterRole may create gatewayclasses"))
	} else {
		c.Results = append(c.Results, ok(desc))
	}
	return c, false
}

func served(r *run, gv, resource string) bool {
	l, err := r.d.Kube.Discovery().ServerResourcesForGroupVersion(gv)
	if err != nil || l == nil {
		return false
	}
	for _, res := range l.APIResources {
		if res.Name == resource {
			return true
		}
	}
	return false
}

func preInstall(ctx context.Context, r *run) (Category, bool) {
	c := Category{Name: "pre-install"}
	for _, p := range []struct{ group, resource string }{
		{"", "namespaces"}, {"apps", "daemonsets"}, {"apps", "deployments"},
		{"rbac.authorization.k8s.io", "clusterroles"}, {"apiextensions.k8s.io", "customresourcedefinitions"},
	} {
		desc := "can create " + p.resource
		sar := &authv1.SelfSubjectAccessReview{Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{
			Verb: "create", Group: p.group, Resource: p.resource}}}
		res, err := r.d.Kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		switch {
		case err != nil:
			c.Results = append(c.Results, fail(desc, err.Error(), "ask a cluster admin to install Weft, or to grant you cluster-admin"))
		case !res.Status.Allowed:
			c.Results = append(c.Results, fail(desc, "not allowed: "+res.Status.Reason, "installing Weft needs cluster-admin rights"))
		default:
			c.Results = append(c.Results, ok(desc))
		}
	}
	desc := fmt.Sprintf("namespace %s does not exist yet", r.d.SystemNS)
	if _, err := r.d.Kube.CoreV1().Namespaces().Get(ctx, r.d.SystemNS, metav1.GetOptions{}); err == nil {
		c.Results = append(c.Results, warn(desc, fmt.Sprintf("namespace %s already exists", r.d.SystemNS), "Weft may already be installed: run `weftctl check`"))
	} else {
		c.Results = append(c.Results, ok(desc))
	}
	nss, err := r.d.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "istio-injection=enabled"})
	const sdesc = "no namespace uses sidecar injection"
	if err == nil && len(nss.Items) > 0 {
		var names []string
		for _, n := range nss.Items {
			names = append(names, n.Name)
		}
		c.Results = append(c.Results, warn(sdesc, "labelled istio-injection=enabled: "+strings.Join(names, ", "),
			"sidecars and ambient do not mix in one pod; remove the label before enrolling these namespaces"))
	} else {
		c.Results = append(c.Results, ok(sdesc))
	}
	return c, false
}
