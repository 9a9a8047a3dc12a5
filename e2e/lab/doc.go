// Package lab builds and runs the Weft lab: a real multi-node Kubernetes
// cluster on one Linux machine, made of network namespaces.
//
// # Layout
//
// A lab called NAME (also the prefix of everything it makes) has:
//
//   - NAME-ul: the underlay bridge br0. The host reaches it through the veth
//     NAME-host, addressed 100.64.X.254/24, where X is the first /24 of
//     100.64.0.0/16 no host route overlaps.
//   - NAME-cp: etcd (127.0.0.1:2379), kube-apiserver (100.64.X.1:6443),
//     kube-controller-manager and kube-scheduler.
//   - NAME-node-N: node N at 100.64.X.(10+N) with pod CIDR 10.C.N.0/24,
//     running kube-proxy (iptables mode) and kubelet-lite (package kubelet),
//     with host-gw routes to the other nodes' pod CIDRs. Pods get their own
//     namespaces NAME-pod-*, wired by the real ptp and host-local plugins.
//
// C is X, or X+1 from 96 on (ClusterOctet), so each running lab, having its
// own underlay subnet, has its own pod range 10.C.0.0/16: a node agent that
// scans the host's processes for a pod's IP cannot find another lab's pod.
// Services use 10.96.0.0/16 in every lab; CoreDNS runs as a Deployment
// behind kube-dns at 10.96.0.10. State (certificates, kubeconfigs, etcd
// data, component logs, node roots) lives in _output/lab/NAME; the admin
// kubeconfig is _output/lab/NAME/kubeconfig and component logs are in
// _output/lab/NAME/logs.
//
// # Use
//
// Tests call Start, which starts a lab in the test process and removes it
// through t.Cleanup. The weft-lab command runs Up in a detached supervisor
// (Launch, Serve) so the lab outlives `weft-lab up`; Down stops it and finds
// leftovers by prefix after a killed run. The Kubernetes, etcd, CoreDNS and
// CNI binaries are built from the Go module proxy by EnsurePinned, from the
// pinned tools modules under k8s/, once per change of their go.mod/go.sum.
package lab
