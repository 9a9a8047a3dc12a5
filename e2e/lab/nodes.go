package lab

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/weftmesh/weft/e2e/lab/kubelet"
)

// cniConflistName is the primary network's conf file. Chained installers
// may add or rewrite files beside it; kubelet-lite takes the first in
// lexical order.
const cniConflistName = "10-ptp.conflist"

// ptpConflist is the node's primary CNI network: ptp with host-local IPAM
// on the node's pod CIDR. No masquerade: pods see each other's real
// addresses across nodes (routes are host-gw).
func ptpConflist(podCIDR, ipamDir string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "lab",
		"plugins": []any{
			map[string]any{
				"type":   "ptp",
				"ipMasq": false,
				"mtu":    1500,
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": ipamDir,
					"ranges":  []any{[]any{map[string]any{"subnet": podCIDR}}},
					"routes":  []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
		},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode CNI conflist: %w", err)
	}
	return append(b, '\n'), nil
}

// nodeDirs are one node's directories below the lab's state dir.
type nodeDirs struct {
	base, root, state, cniConf, cniBin string
}

func newNodeDirs(labDir string, n NodePlan) nodeDirs {
	base := filepath.Join(labDir, "nodes", n.Name)
	root := filepath.Join(base, "root")
	return nodeDirs{
		base:    base,
		root:    root,
		state:   filepath.Join(base, "kubelet"),
		cniConf: filepath.Join(root, "etc", "cni", "net.d"),
		cniBin:  filepath.Join(root, "opt", "cni", "bin"),
	}
}

// prepareNode lays out the node's root (CNI conf and plugins), its
// credentials, and its kubelet-lite config file; it returns the config path.
func prepareNode(labDir string, p Plan, n NodePlan, k *pki, bins Binaries, images map[string]string, shim string) (string, error) {
	d := newNodeDirs(labDir, n)
	for _, dir := range []string{d.cniConf, d.cniBin, d.state, filepath.Join(d.root, "var", "log"), filepath.Join(d.root, "tmp")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("create node dir: %w", err)
		}
	}
	for _, plugin := range []string{"ptp", "host-local", "loopback"} {
		dst := filepath.Join(d.cniBin, plugin)
		if err := os.Symlink(filepath.Join(bins.CNIBinDir, plugin), dst); err != nil {
			return "", fmt.Errorf("install CNI plugin %s: %w", plugin, err)
		}
	}
	conf, err := ptpConflist(n.PodCIDR.String(), filepath.Join(d.state, "ipam"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(d.cniConf, cniConflistName), conf, 0o644); err != nil {
		return "", fmt.Errorf("write CNI conflist: %w", err)
	}

	kubeconfig := filepath.Join(d.base, "kubelet.kubeconfig")
	if err := k.clientKubeconfig(kubeconfig, p.APIServerURL(), "system:node:"+n.Name, []string{"system:nodes"}); err != nil {
		return "", err
	}
	proxyKubeconfig := filepath.Join(d.base, "kube-proxy.kubeconfig")
	if err := k.clientKubeconfig(proxyKubeconfig, p.APIServerURL(), "system:kube-proxy", nil); err != nil {
		return "", err
	}
	serving, err := k.ca.issue(certSpec{cn: n.Name, dns: []string{n.Name}, ips: []net.IP{n.IP.AsSlice()}, server: true})
	if err != nil {
		return "", err
	}
	servingCert, servingKey, err := serving.write(d.base, "kubelet-serving")
	if err != nil {
		return "", err
	}
	cfg := kubelet.Config{
		NodeName:      n.Name,
		NodeIP:        n.IP.String(),
		PodCIDR:       n.PodCIDR.String(),
		Kubeconfig:    kubeconfig,
		RootDir:       d.root,
		StateDir:      d.state,
		CNIConfDir:    d.cniConf,
		CNIBinDir:     d.cniBin,
		Images:        images,
		ClusterDNS:    ClusterDNS,
		ClusterDomain: ClusterDomain,
		ServingCert:   servingCert,
		ServingKey:    servingKey,
		ClientCA:      k.caFile,
		ShimPath:      shim,
		ImageFiles:    imageFiles(images),
		NetnsPrefix:   p.PodNetnsPrefix(),
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode kubelet config: %w", err)
	}
	path := filepath.Join(d.base, "kubelet.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return "", fmt.Errorf("write kubelet config: %w", err)
	}
	return path, nil
}

// Images is the lab's image table: image repository (no tag or digest) to
// binary. Every binary in the repository's _output/bin is "weft/<name>";
// weft/echo is the echo workload, and CoreDNS's image is the built coredns.
func Images(root string, bins Binaries) (map[string]string, error) {
	images := map[string]string{}
	dir := filepath.Join(root, "_output", "bin")
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			images["weft/"+e.Name()] = filepath.Join(dir, e.Name())
		}
	}
	images["weft/echo"] = bins.Echo
	images[CoreDNSImage] = bins.CoreDNS
	return images, nil
}

// imageFiles adds to images the extra binaries they ship on a real
// registry: weft/weft-cni-agent carries the weft-cni plugin, which its
// install container copies into the node's CNI bin dir. An entry is left
// out when the binary is not built.
func imageFiles(images map[string]string) map[string]map[string]string {
	plugin, ok := images["weft/weft-cni"]
	if !ok {
		return nil
	}
	if st, err := os.Stat(plugin); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	return map[string]map[string]string{"weft/weft-cni-agent": {"/usr/local/bin/weft-cni": plugin}}
}

// CoreDNSImage is the image repository of the cluster DNS Deployment.
const CoreDNSImage = "registry.k8s.io/coredns/coredns"
