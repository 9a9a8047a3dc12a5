package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// podNetwork identifies one pod attachment for the CNI chain.
type podNetwork struct {
	ContainerID string // the sandbox id (pod UID)
	NetNS       string // netns path
	Namespace   string
	Name        string
	UID         string
}

// cniNetwork runs the node's CNI chain through libcni the way a kubelet's
// runtime does: the first config file in lexical order of the conf dir,
// re-read for every ADD; DEL with the config used at ADD.
type cniNetwork struct {
	confDir  string
	cni      *libcni.CNIConfig
	cacheDir string
}

// newCNINetwork runs plugins with exec, or directly in the kubelet's own
// mount namespace when exec is nil.
func newCNINetwork(confDir, binDir, cacheDir string, exec invoke.Exec) *cniNetwork {
	if exec == nil {
		// An explicit Exec: libcni creates its default lazily, which races
		// when pod workers run the chain concurrently.
		exec = &invoke.DefaultExec{
			RawExec:       &invoke.RawExec{Stderr: os.Stderr},
			PluginDecoder: version.PluginDecoder{},
		}
	}
	return &cniNetwork{
		confDir:  confDir,
		cni:      libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, exec),
		cacheDir: cacheDir,
	}
}

// loadConfList returns the first network configuration of the conf dir,
// in lexical file order, as a conflist (single-plugin .conf files are
// wrapped).
func (c *cniNetwork) loadConfList() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(c.confDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, fmt.Errorf("read cni conf dir %s: %w", c.confDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no cni configuration in %s: the network is not ready", c.confDir)
	}
	// ConfFiles lists in name order; like a kubelet's runtime, skip files
	// that do not parse (an installer may be mid-write) and take the first.
	var errs []error
	for _, f := range files {
		l, err := loadConfFile(f)
		if err == nil {
			return l, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no valid cni configuration in %s: %w", c.confDir, errors.Join(errs...))
}

func loadConfFile(f string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(f) == ".conflist" {
		l, err := libcni.ConfListFromFile(f)
		if err != nil {
			return nil, fmt.Errorf("load cni conflist %s: %w", f, err)
		}
		return l, nil
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("load cni conf %s: %w", f, err)
	}
	l, err := wrapPluginConf(b)
	if err != nil {
		return nil, fmt.Errorf("load cni conf %s: %w", f, err)
	}
	return l, nil
}

// wrapPluginConf parses a single-plugin network configuration and returns
// it as a list holding that one plugin, as a kubelet's runtime still does.
func wrapPluginConf(b []byte) (*libcni.NetworkConfigList, error) {
	plugin, err := libcni.NetworkPluginConfFromBytes(b)
	if err != nil {
		return nil, err
	}
	list, err := json.Marshal(struct {
		Name       string            `json:"name"`
		CNIVersion string            `json:"cniVersion"`
		Plugins    []json.RawMessage `json:"plugins"`
	}{plugin.Network.Name, plugin.Network.CNIVersion, []json.RawMessage{plugin.Bytes}})
	if err != nil {
		return nil, fmt.Errorf("wrap in a list: %w", err)
	}
	return libcni.NetworkConfFromBytes(list)
}

func (c *cniNetwork) runtimeConf(p podNetwork) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: p.ContainerID,
		NetNS:       p.NetNS,
		IfName:      "eth0",
		CacheDir:    c.cacheDir,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ContainerID},
			{"K8S_POD_UID", p.UID},
		},
	}
}

// Add attaches the pod and returns its IPs (IPv4 first) and the raw
// conflist used, which Del needs.
func (c *cniNetwork) Add(ctx context.Context, p podNetwork) ([]string, []byte, error) {
	list, err := c.loadConfList()
	if err != nil {
		return nil, nil, err
	}
	res, err := c.cni.AddNetworkList(ctx, list, c.runtimeConf(p))
	if err != nil {
		return nil, list.Bytes, fmt.Errorf("cni add (%s): %w", list.Name, err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, list.Bytes, fmt.Errorf("convert cni result: %w", err)
	}
	var v4, v6 []string
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			v4 = append(v4, ip.Address.IP.String())
		} else {
			v6 = append(v6, ip.Address.IP.String())
		}
	}
	ips := append(v4, v6...)
	if len(ips) == 0 {
		return nil, list.Bytes, fmt.Errorf("cni add (%s) returned no IP address", list.Name)
	}
	return ips, list.Bytes, nil
}

// Check verifies the attachment with the config used at Add.
func (c *cniNetwork) Check(ctx context.Context, p podNetwork, confBytes []byte) error {
	list, err := libcni.ConfListFromBytes(confBytes)
	if err != nil {
		return fmt.Errorf("parse saved cni config: %w", err)
	}
	return c.cni.CheckNetworkList(ctx, list, c.runtimeConf(p))
}

// Del detaches the pod with the config used at Add (or the current one if
// none was saved). Deleting a missing attachment succeeds.
func (c *cniNetwork) Del(ctx context.Context, p podNetwork, confBytes []byte) error {
	var list *libcni.NetworkConfigList
	var err error
	if len(confBytes) > 0 {
		list, err = libcni.ConfListFromBytes(confBytes)
	} else {
		list, err = c.loadConfList()
	}
	if err != nil {
		return fmt.Errorf("cni config for del: %w", err)
	}
	rt := c.runtimeConf(p)
	if _, statErr := os.Stat(p.NetNS); statErr != nil {
		rt.NetNS = "" // plugins must still release IPAM without the netns
	}
	if err := c.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("cni del (%s): %w", list.Name, err)
	}
	return nil
}

// firstIPv4 returns the first IPv4 address in ips, or the first address.
func firstIPv4(ips []string) string {
	for _, s := range ips {
		if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
			return s
		}
	}
	if len(ips) > 0 {
		return ips[0]
	}
	return ""
}
