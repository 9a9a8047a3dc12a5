package nodeagent

import (
	corev1 "k8s.io/api/core/v1"
)

// Labels and annotations shared with Istio ambient.
const (
	LabelDataplaneMode     = "istio.io/dataplane-mode"
	DataplaneModeAmbient   = "ambient"
	DataplaneModeNone      = "none"
	AnnotationRedirection  = "ambient.istio.io/redirection"
	RedirectionEnabled     = "enabled"
	annotationSidecarState = "sidecar.istio.io/status"
)

// namespaceEnrolled reports whether a namespace's label enrolls its pods.
func namespaceEnrolled(ns *corev1.Namespace) bool {
	return ns != nil && ns.Labels[LabelDataplaneMode] == DataplaneModeAmbient
}

// shouldEnroll decides whether pod belongs in the mesh, given its namespace
// (nil when unknown).
func shouldEnroll(pod *corev1.Pod, ns *corev1.Namespace) bool {
	if pod == nil || pod.Spec.HostNetwork {
		return false
	}
	if _, sidecar := pod.Annotations[annotationSidecarState]; sidecar {
		return false
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == "istio-proxy" {
			return false
		}
	}
	switch pod.Labels[LabelDataplaneMode] {
	case DataplaneModeNone:
		return false
	case DataplaneModeAmbient:
		return true
	}
	return namespaceEnrolled(ns)
}

// podRunning reports whether a running pod can be enrolled from the
// informer (it has an IP and its sandbox is up and not going away).
func podRunning(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil &&
		pod.Status.PodIP != "" &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

func podIPs(pod *corev1.Pod) []string {
	var out []string
	for _, ip := range pod.Status.PodIPs {
		out = append(out, ip.IP)
	}
	if len(out) == 0 && pod.Status.PodIP != "" {
		out = append(out, pod.Status.PodIP)
	}
	return out
}
