package check

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/cmd/weftctl/internal/enroll"
	"github.com/weftmesh/weft/cmd/weftctl/internal/kube"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
)

func workloads(ctx context.Context, r *run) (Category, bool) {
	c := Category{Name: "enrolled-workloads"}
	nss, err := r.d.Kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		c.Results = append(c.Results, fail("can list namespaces", err.Error(), "weftctl check needs to list namespaces"))
		return c, false
	}
	var enrolled, bad []string
	for _, n := range nss.Items {
		v, has := n.Labels[enroll.DataplaneModeLabel]
		switch {
		case !has:
		case v == enroll.DataplaneModeAmbient:
			enrolled = append(enrolled, n.Name)
		case v != enroll.DataplaneModeNone:
			bad = append(bad, fmt.Sprintf("namespace %s: %s=%q is neither %q nor %q; its pods are NOT in the mesh", n.Name, enroll.DataplaneModeLabel, v, enroll.DataplaneModeAmbient, enroll.DataplaneModeNone))
		}
	}
	sort.Strings(enrolled)
	labelled, err := r.d.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: enroll.DataplaneModeLabel})
	if err == nil {
		for _, p := range labelled.Items {
			if v := p.Labels[enroll.DataplaneModeLabel]; v != enroll.DataplaneModeAmbient && v != enroll.DataplaneModeNone {
				bad = append(bad, fmt.Sprintf("pod %s/%s: %s=%q is neither %q nor %q", p.Namespace, p.Name, enroll.DataplaneModeLabel, v, enroll.DataplaneModeAmbient, enroll.DataplaneModeNone))
			}
		}
	}
	const ldesc = "dataplane-mode labels are valid"
	if len(bad) > 0 {
		c.Results = append(c.Results, fail(ldesc, strings.Join(bad, "\n"),
			fmt.Sprintf("fix the label: `kubectl label namespace NAME %s=%s --overwrite` (or `weftctl namespace enroll NAME`)", enroll.DataplaneModeLabel, enroll.DataplaneModeAmbient)))
	} else {
		c.Results = append(c.Results, ok(ldesc))
	}

	var stuck, unheld []string
	var pods []corev1.Pod
	for _, ns := range enrolled {
		s, err := enroll.Check(ctx, r.d.Kube, r.d.SystemNS, ns, true)
		if err != nil {
			stuck = append(stuck, fmt.Sprintf("namespace %s: %v", ns, err))
			continue
		}
		for _, p := range s {
			stuck = append(stuck, fmt.Sprintf("%s/%s: %s", ns, p.Pod, p.Reason))
		}
		l, err := r.d.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, p := range l.Items {
				if enroll.InMesh(&p) && p.Annotations[enroll.RedirectionAnnotation] == enroll.RedirectionEnabled {
					pods = append(pods, p)
				}
			}
		}
	}
	const rdesc = "enrolled pods are redirected"
	if len(stuck) > 0 {
		c.Results = append(c.Results, fail(rdesc, strings.Join(stuck, "\n"), "the CNI agent and ztunnel on the pod's node enroll it: `weftctl node diagnose NODE`"))
	} else {
		c.Results = append(c.Results, ok(rdesc))
	}

	ztOn := map[string]*corev1.Pod{}
	zts, _ := kube.PodsBySelector(ctx, r.d.Kube, r.d.SystemNS, kube.ZtunnelSelector)
	for i := range zts {
		ztOn[zts[i].Spec.NodeName] = &zts[i]
	}
	var certErr, certWarn []string
	for _, p := range pods {
		zt := ztOn[p.Spec.NodeName]
		if zt == nil || !kube.PodReady(zt) {
			unheld = append(unheld, fmt.Sprintf("%s/%s: no ready ztunnel on node %s", p.Namespace, p.Name, p.Spec.NodeName))
			continue
		}
		res := r.dump(ctx, zt)
		if res.err != nil {
			continue // reported by the control-plane check
		}
		held := false
		for _, s := range res.dump.WorkloadState {
			if s.Namespace == p.Namespace && s.Name == p.Name {
				held = true
			}
		}
		if !held {
			unheld = append(unheld, fmt.Sprintf("%s/%s: annotated %s but ztunnel %s on node %s does not hold it", p.Namespace, p.Name, enroll.RedirectionEnabled, zt.Name, p.Spec.NodeName))
		}
		e, w := certStatus(r, &p, res.dump.Certificates)
		certErr, certWarn = appendIf(certErr, e), appendIf(certWarn, w)
	}
	const hdesc = "enrolled pods are held by their node's ztunnel"
	if len(unheld) > 0 {
		c.Results = append(c.Results, fail(hdesc, strings.Join(unheld, "\n"), "traffic of these pods is redirected to a ztunnel that does not serve them: restart the node's weft-cni-agent to replay its pods to ztunnel"))
	} else {
		c.Results = append(c.Results, ok(hdesc))
	}
	c.Results = append(c.Results, redirectRules(ctx, r, pods))
	const cdesc = "enrolled pods have valid certificates"
	switch {
	case len(certErr) > 0:
		c.Results = append(c.Results, fail(cdesc, strings.Join(append(certErr, certWarn...), "\n"), "ztunnel gets certificates from istiod-lite's CA on 15012: check istiod-lite is ready and `weftctl ztunnel-config certificates --node NODE`"))
	case len(certWarn) > 0:
		c.Results = append(c.Results, warn(cdesc, strings.Join(certWarn, "\n"), "ztunnel fetches a pod's certificate when it takes the pod and renews it before expiry; if this persists, check istiod-lite's CA logs"))
	default:
		c.Results = append(c.Results, ok(cdesc))
	}
	return c, false
}

func appendIf(s []string, v string) []string {
	if v == "" {
		return s
	}
	return append(s, v)
}

// certStatus judges pod p's certificate in its ztunnel's dump: an error
// message, or a warning message, or neither.
func certStatus(r *run, p *corev1.Pod, certs []certmgr.Status) (errMsg, warnMsg string) {
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	who := fmt.Sprintf("%s/%s (sa %s)", p.Namespace, p.Name, sa)
	for _, s := range certs {
		if s.ID.Namespace != p.Namespace || s.ID.ServiceAccount != sa {
			continue
		}
		switch {
		case s.State != certmgr.StateAvailable:
			msg := fmt.Sprintf("%s: certificate %s", who, s.State)
			if s.LastError != "" {
				msg += ": " + s.LastError
			}
			return msg, ""
		case !r.d.Now.Before(s.NotAfter):
			return fmt.Sprintf("%s: certificate expired at %s", who, s.NotAfter.UTC().Format("2006-01-02T15:04:05Z")), ""
		case s.NotAfter.Sub(r.d.Now) < r.d.CertWarn:
			return "", fmt.Sprintf("%s: certificate expires in %s", who, s.NotAfter.Sub(r.d.Now).Round(1e9))
		}
		return "", ""
	}
	return "", fmt.Sprintf("%s: ztunnel on %s holds no certificate for it yet", who, p.Spec.NodeName)
}
