package nodeagent

import (
	"errors"
	"time"

	"github.com/weftmesh/weft/cni/agentapi"
	"github.com/weftmesh/weft/cni/iptables"
)

// DefaultZDSSocket is where ztunnel looks for the agent.
const DefaultZDSSocket = "/var/run/ztunnel/ztunnel.sock"

// DefaultAdminAddr is the agent's localhost-only admin address (in the
// node's network namespace: the agent runs with hostNetwork). weftctl
// reaches it through a port-forward to the agent pod.
const DefaultAdminAddr = "127.0.0.1:15016"

// Config configures the agent.
type Config struct {
	// NodeName is this node's name (from the downward API).
	NodeName string
	// ZDSSocket is the ZDS unix socket path.
	ZDSSocket string
	// CNISocket is the plugin API's unix socket path.
	CNISocket string
	// EnrollmentFile is where enrolled namespaces are recorded for the
	// plugin.
	EnrollmentFile string
	// HTTPAddr serves /healthz, /readyz and /metrics; "" disables it.
	HTTPAddr string
	// AdminAddr serves the debug endpoints (GET /debug/pods: every held
	// pod with a live check of its redirect rules); "" disables it. Keep
	// it on localhost: weftctl reaches it through a port-forward.
	AdminAddr string
	// RedirectDNS captures pods' DNS to ztunnel's DNS proxy.
	RedirectDNS bool
	// CaptureUDP captures pods' outbound UDP (except DNS) to ztunnel's UDP
	// listener (TPROXY to 127.0.0.1:15005), so ztunnel carries it through
	// the mesh over CONNECT-UDP; IPv4 only. Off by default: ztunnels must
	// serve UDP (and destinations QUIC), or captured UDP is dropped.
	CaptureUDP bool
	// IPv6 installs the IPv6 capture (ip6tables rules, ip -6 rule and
	// local route) beside the IPv4 one in every enrolled pod, for
	// dual-stack clusters.
	IPv6 bool
	// IPTablesMode is nft, legacy or "" to detect the node's.
	IPTablesMode string
	// AddTimeout bounds how long a CNI ADD waits for rules and ztunnel's
	// ack (default 25 s, below the plugin's 30 s).
	AddTimeout time.Duration
	// ResyncInterval is how often every pod is reconciled again (default
	// 1 min).
	ResyncInterval time.Duration
	// RuleCheckInterval is how often every held pod's live redirect rules
	// are compared with the expected set and re-applied if they drifted
	// (default DefaultRuleCheckInterval, 30 s).
	RuleCheckInterval time.Duration
	// NoZtunnelGrace is how long pods may wait for a ztunnel before each
	// gets a ZtunnelNotConnected event (default 10 s).
	NoZtunnelGrace time.Duration
}

// withDefaults fills unset fields.
func (c Config) withDefaults() Config {
	if c.ZDSSocket == "" {
		c.ZDSSocket = DefaultZDSSocket
	}
	if c.CNISocket == "" {
		c.CNISocket = agentapi.DefaultSocket
	}
	if c.EnrollmentFile == "" {
		c.EnrollmentFile = agentapi.DefaultEnrollmentFile
	}
	if c.AddTimeout <= 0 {
		c.AddTimeout = 25 * time.Second
	}
	if c.NoZtunnelGrace <= 0 {
		c.NoZtunnelGrace = 10 * time.Second
	}
	if c.RuleCheckInterval <= 0 {
		c.RuleCheckInterval = DefaultRuleCheckInterval
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = time.Minute
	}
	return c
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("node name is required (set NODE_NAME from spec.nodeName)"))
	}
	if _, err := iptables.ParseMode(c.IPTablesMode); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
