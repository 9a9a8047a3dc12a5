package kubelet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Config configures one kubelet-lite. It is JSON-encodable; the lab writes
// one file per node.
type Config struct {
	// NodeName is the Node object's name.
	NodeName string
	// NodeIP is the node's underlay address; the kubelet API listens on
	// NodeIP:Port and the Node reports it as its InternalIP.
	NodeIP string
	// PodCIDR is the node's pod range, set as the Node's spec.podCIDR.
	PodCIDR string
	// Kubeconfig holds the node credentials (CN=system:node:<name>, O=system:nodes).
	Kubeconfig string
	// RootDir is the node's root: hostPath "/x" maps to RootDir+"/x",
	// except /proc, /sys and /dev which map to the real ones.
	RootDir string
	// StateDir holds kubelet-lite's own state (pod dirs, logs, netns
	// mounts, CNI cache). Removed entries leave nothing behind on exit.
	StateDir string
	// CNIConfDir and CNIBinDir are the node's CNI directories.
	CNIConfDir, CNIBinDir string
	// Images maps an image repository without tag or digest to an
	// absolute binary path.
	Images map[string]string
	// ClusterDNS is the kube-dns Service ClusterIP; ClusterDomain the
	// cluster's DNS domain ("cluster.local" if empty).
	ClusterDNS, ClusterDomain string
	// ServingCert and ServingKey are the kubelet API's PEM files.
	ServingCert, ServingKey string
	// ClientCA verifies the API server's client certificate.
	ClientCA string
	// ShimPath is the binary re-exec'd as "ShimPath kubelet-shim ..." to
	// start containers; it must call ShimMain.
	ShimPath string

	// ImageFiles adds files to an image (repository without tag -> path in
	// the container -> host file), e.g. a second binary the image ships.
	// Every container also sees its image's binary at
	// /usr/local/bin/<binary name>, where the project's images put it.
	ImageFiles map[string]map[string]string `json:",omitempty"`

	// NetnsPrefix, when set, places pod network namespaces in
	// /var/run/netns as "<NetnsPrefix>-<pod uid prefix>" (visible to
	// "ip netns"); otherwise they are bind-mounted under StateDir/netns.
	NetnsPrefix string `json:",omitempty"`
	// Port is the kubelet API port (10250 if zero).
	Port int `json:",omitempty"`
	// MaxPods is the Node's pod capacity (110 if zero).
	MaxPods int `json:",omitempty"`
}

// LoadConfig reads a JSON Config from path and validates it.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read kubelet config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("parse kubelet config %s: %w", path, err)
	}
	cfg.setDefaults()
	return cfg, cfg.Validate()
}

func (c *Config) setDefaults() {
	if c.ClusterDomain == "" {
		c.ClusterDomain = "cluster.local"
	}
	if c.Port == 0 {
		c.Port = 10250
	}
	if c.MaxPods == 0 {
		c.MaxPods = 110
	}
	if c.RootDir != "" {
		if c.CNIConfDir == "" {
			c.CNIConfDir = filepath.Join(c.RootDir, "etc/cni/net.d")
		}
		if c.CNIBinDir == "" {
			c.CNIBinDir = filepath.Join(c.RootDir, "opt/cni/bin")
		}
	}
}

// Validate reports what is missing or malformed in c.
func (c *Config) Validate() error {
	var errs []error
	req := func(name, v string) {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	req("NodeName", c.NodeName)
	req("Kubeconfig", c.Kubeconfig)
	req("RootDir", c.RootDir)
	req("StateDir", c.StateDir)
	req("ShimPath", c.ShimPath)
	req("ServingCert", c.ServingCert)
	req("ServingKey", c.ServingKey)
	if net.ParseIP(c.NodeIP) == nil {
		errs = append(errs, fmt.Errorf("NodeIP %q is not an IP address", c.NodeIP))
	}
	if c.PodCIDR != "" {
		if _, _, err := net.ParseCIDR(c.PodCIDR); err != nil {
			errs = append(errs, fmt.Errorf("PodCIDR: %w", err))
		}
	}
	if c.ClusterDNS != "" && net.ParseIP(c.ClusterDNS) == nil {
		errs = append(errs, fmt.Errorf("ClusterDNS %q is not an IP address", c.ClusterDNS))
	}
	for _, p := range []struct{ name, v string }{{"RootDir", c.RootDir}, {"StateDir", c.StateDir}, {"ShimPath", c.ShimPath}} {
		if p.v != "" && !filepath.IsAbs(p.v) {
			errs = append(errs, fmt.Errorf("%s %q must be absolute", p.name, p.v))
		}
	}
	return errors.Join(errs...)
}
