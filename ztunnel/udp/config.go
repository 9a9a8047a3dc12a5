package udp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/weftmesh/weft/pkg/hbone3"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
)

// ListenPort is the in-pod UDP listener's port (127.0.0.1), the TPROXY
// target of the capture rules (cni/iptables UDPPort).
const ListenPort = 15005

// listenAddr is where the listener binds; loopback keeps it unreachable
// from outside the pod.
var listenAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ListenPort)

// Defaults.
const (
	DefaultIdleTimeout    = 60 * time.Second
	DefaultMaxFlowsPerPod = 1024
	// DefaultRetryFailed is how long a flow that could not be opened
	// drops its datagrams before the next one tries again.
	DefaultRetryFailed = time.Second
	// readyTimeout bounds the wait for a destination pod's configuration.
	readyTimeout = 5 * time.Second
	// pendingDatagrams is how many datagrams wait for a flow's tunnel.
	pendingDatagrams = 16
	// maxDatagram is the largest UDP payload read.
	maxDatagram = 65535
)

// Tunnels opens CONNECT-UDP flows; *tunnel.Client implements it.
type Tunnels interface {
	// ConnectUDP opens a flow from pod src to target through dst's ztunnel.
	ConnectUDP(ctx context.Context, src *inpod.Pod, dst *wds.Workload, target netip.AddrPort) (*hbone3.DatagramConn, error)
}

// Config configures a Service.
type Config struct {
	// Store resolves destinations and holds the L4 policies. Required.
	Store *wds.Store
	// Tunnels opens outbound flows. Required.
	Tunnels Tunnels
	// Network is this node's network, for Store lookups.
	Network string
	// ClusterID is the cluster part of workload uids (default Kubernetes).
	ClusterID string
	// IdleTimeout ends a flow without traffic either way for this long
	// (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxFlowsPerPod caps a pod's flows, both directions (default
	// DefaultMaxFlowsPerPod); datagrams opening more are dropped.
	MaxFlowsPerPod int
	// ConnectTimeout bounds opening a tunnel (default 5 s).
	ConnectTimeout time.Duration
	// RetryFailed is how long an outbound flow that could not be opened
	// (refused by the destination's policy, no endpoint, connect failed)
	// drops its datagrams; the application's next datagram after that
	// opens it again, as does its next one after a WDS change (default
	// DefaultRetryFailed). Without it an application that keeps sending
	// from one socket would stay refused after the refusal's cause went.
	RetryFailed time.Duration
	// Metrics counts flows, datagrams and drops; nil counts nothing.
	Metrics *Metrics
	Log     *slog.Logger
}

func (c *Config) validate() error {
	if c.Store == nil || c.Tunnels == nil {
		return errors.New("udp: Store and Tunnels are required")
	}
	if c.IdleTimeout < 0 || c.MaxFlowsPerPod < 0 || c.ConnectTimeout < 0 || c.RetryFailed < 0 {
		return errors.New("udp: IdleTimeout, MaxFlowsPerPod, ConnectTimeout and RetryFailed must not be negative")
	}
	if c.RetryFailed == 0 {
		c.RetryFailed = DefaultRetryFailed
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxFlowsPerPod == 0 {
		c.MaxFlowsPerPod = DefaultMaxFlowsPerPod
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.ClusterID == "" {
		c.ClusterID = "Kubernetes"
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}
