package lab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Grace periods for stopping components.
const (
	controlPlaneGrace = 5 * time.Second
	kubeletGrace      = 20 * time.Second // kubelet-lite stops its pods first
)

func etcdArgs(dataDir string) []string {
	const url = "http://127.0.0.1:2379"
	return []string{
		"--name=lab",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + url,
		"--advertise-client-urls=" + url,
		"--listen-peer-urls=http://127.0.0.1:2380",
		"--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=lab=http://127.0.0.1:2380",
		"--listen-metrics-urls=",
		"--unsafe-no-fsync=true", // a lab's data is disposable; fsync costs seconds on a busy disk
		"--log-level=warn",
	}
}

func apiServerArgs(p Plan, k *pki) []string {
	return []string{
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=0.0.0.0",
		"--advertise-address=" + p.APIIP.String(),
		fmt.Sprintf("--secure-port=%d", APIPort),
		"--tls-cert-file=" + k.apiCert,
		"--tls-private-key-file=" + k.apiKey,
		"--client-ca-file=" + k.caFile,
		"--kubelet-client-certificate=" + k.kubeletClientCert,
		"--kubelet-client-key=" + k.kubeletClientKey,
		"--kubelet-certificate-authority=" + k.caFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--requestheader-client-ca-file=" + k.frontProxyCA,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + k.proxyClientCert,
		"--proxy-client-key-file=" + k.proxyClientKey,
		"--service-account-issuer=https://kubernetes.default.svc." + ClusterDomain,
		"--service-account-key-file=" + k.saPubFile,
		"--service-account-signing-key-file=" + k.saKeyFile,
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--profiling=false",
		"--event-ttl=30m",
		"--v=1",
	}
}

func controllerManagerArgs(kubeconfig string, k *pki, clusterCIDR netip.Prefix) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		// The lab assigns pod CIDRs itself; node IPAM stays off.
		"--controllers=*,-node-ipam-controller",
		"--allocate-node-cidrs=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + k.saKeyFile,
		"--root-ca-file=" + k.caFile,
		"--cluster-signing-cert-file=" + k.caFile,
		"--cluster-signing-key-file=" + k.caKeyFile,
		"--cluster-cidr=" + clusterCIDR.String(),
		"--service-cluster-ip-range=" + ServiceCIDR,
		"--profiling=false",
		"--v=1",
	}
}

func schedulerArgs(kubeconfig string) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
		"--profiling=false",
		"--v=1",
	}
}

func kubeProxyArgs(n NodePlan, kubeconfig string, clusterCIDR netip.Prefix) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--hostname-override=" + n.Name,
		"--proxy-mode=iptables",
		"--cluster-cidr=" + clusterCIDR.String(),
		// Leave the host-wide conntrack table size alone.
		"--conntrack-max-per-core=0",
		"--conntrack-min=0",
		"--metrics-bind-address=127.0.0.1:10249",
		"--healthz-bind-address=127.0.0.1:10256",
		"--profiling=false",
		"--v=1",
	}
}

func kubeconfigPath(dir, user string) string {
	return filepath.Join(dir, strings.ReplaceAll(strings.TrimPrefix(user, "system:"), ":", "-")+".kubeconfig")
}
