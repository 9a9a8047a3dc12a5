// Package kube watches the Kubernetes objects istiod-lite's ambient model
// needs — Namespaces, Pods, Services, EndpointSlices not managed by the
// endpoint-slice controller (those of selector-less Services), Istio
// AuthorizationPolicies and PeerAuthentications, and Gateway API Gateways —
// through shared informers whose transform functions keep only the fields
// the model reads, and feeds every change to a Sink. At start-up pods are
// handed over after the kinds their workloads depend on, so each is built
// once; the pod cache is indexed by node (PodIndex) for the CA's
// impersonation checks.
package kube
