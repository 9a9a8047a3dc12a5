package plugin

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/weftmesh/weft/cni/agentapi"
)

// Defaults for optional config fields.
const (
	DefaultLogFile    = "/var/log/weft-cni.log"
	DefaultAddTimeout = 30 * time.Second
)

// Config is weft-cni's entry in the conflist, as written by the installer.
type Config struct {
	types.PluginConf

	// AgentSocket is the node agent's unix socket.
	AgentSocket string `json:"agentSocket,omitempty"`
	// EnrollmentFile is where the agent records enrolled namespaces.
	EnrollmentFile string `json:"enrollmentFile,omitempty"`
	// LogFile receives the plugin's logs; "" means DefaultLogFile, "-"
	// discards them.
	LogFile string `json:"logFile,omitempty"`
	// LogLevel is debug, info (default), warn or error.
	LogLevel string `json:"logLevel,omitempty"`
	// AddTimeout bounds how long ADD waits for the agent ("30s").
	AddTimeout string `json:"addTimeout,omitempty"`

	addTimeout time.Duration
}

// parseConfig decodes and validates stdin. needPrev demands a prevResult
// (ADD and CHECK of a chained plugin).
func parseConfig(stdin []byte, needPrev bool) (*Config, error) {
	conf := &Config{}
	if err := json.Unmarshal(stdin, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "weft-cni: cannot parse network config", err.Error())
	}
	if conf.AgentSocket == "" {
		conf.AgentSocket = agentapi.DefaultSocket
	}
	if conf.EnrollmentFile == "" {
		conf.EnrollmentFile = agentapi.DefaultEnrollmentFile
	}
	if conf.LogFile == "" {
		conf.LogFile = DefaultLogFile
	}
	conf.addTimeout = DefaultAddTimeout
	if conf.AddTimeout != "" {
		d, err := time.ParseDuration(conf.AddTimeout)
		if err != nil || d <= 0 {
			return nil, types.NewError(types.ErrInvalidNetworkConfig,
				fmt.Sprintf("weft-cni: addTimeout %q is not a positive duration", conf.AddTimeout), "")
		}
		conf.addTimeout = d
	}
	if _, err := parseLevel(conf.LogLevel); err != nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "weft-cni: "+err.Error(), "")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "weft-cni: cannot parse prevResult", err.Error())
	}
	if needPrev && conf.PrevResult == nil {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			"weft-cni must be chained after a primary CNI plugin: no prevResult in its config",
			"add weft-cni to the end of the primary conflist's plugins (weft-cni-agent install does this)")
	}
	return conf, nil
}

// k8sArgs are the CNI_ARGS a kubelet passes.
type k8sArgs struct {
	types.CommonArgs
	K8S_POD_NAME               types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_NAMESPACE          types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_INFRA_CONTAINER_ID types.UnmarshallableString //nolint:revive // CNI_ARGS key
	K8S_POD_UID                types.UnmarshallableString //nolint:revive // CNI_ARGS key
}

func parseK8sArgs(s string) (*k8sArgs, error) {
	a := &k8sArgs{}
	a.IgnoreUnknown = true
	if err := types.LoadArgs(s, a); err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "weft-cni: cannot parse CNI_ARGS", err.Error())
	}
	return a, nil
}

// resultIPs lists the IPs of a previous result.
func resultIPs(r types.Result) []string {
	if r == nil {
		return nil
	}
	cur, err := currentResult(r)
	if err != nil {
		return nil
	}
	var ips []string
	for _, ip := range cur.IPs {
		if a, ok := netip.AddrFromSlice(ip.Address.IP); ok {
			ips = append(ips, a.Unmap().String())
		}
	}
	return ips
}
