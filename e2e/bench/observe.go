package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/istiod-lite/xds"
	"github.com/weftmesh/weft/pkg/netns"
)

// Loopback-only endpoints the control-plane scenarios read, each inside
// its process's network namespace: istiod-lite's debug server and a
// ztunnel's metrics.
const (
	istiodDebugAddr  = "127.0.0.1:9876"
	ztunnelMetricsAt = "127.0.0.1:15020"
)

// nsClient is an HTTP client whose connections are made inside one network
// namespace (pkg/netns creates the socket there; it stays there), so the
// benchmark reaches a pod's loopback servers without exec'ing a curl.
type nsClient struct {
	ns *netns.NetNS
	hc *http.Client
}

// newNSClient opens the network namespace at path. keepAlive reuses
// connections (pollers); without it every request opens a new one
// (probes that must each be a new connection through the mesh).
func newNSClient(path string, keepAlive bool, timeout time.Duration) (*nsClient, error) {
	ns, err := netns.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", path, err)
	}
	tr := &http.Transport{
		DisableKeepAlives: !keepAlive,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return ns.Dial(ctx, &net.Dialer{Timeout: timeout}, network, addr)
		},
	}
	return &nsClient{ns: ns, hc: &http.Client{Transport: tr, Timeout: timeout}}, nil
}

// get fetches url and returns the body of a 200 answer.
func (c *nsClient) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }() // the body was read or the error is returned
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return body, nil
}

// Close closes idle connections and the namespace handle; idempotent.
func (c *nsClient) Close() error {
	c.hc.CloseIdleConnections()
	return c.ns.Close()
}

// ackObserver reads every istiod-lite replica's loopback /debug/clients:
// each connected xDS client's held resource versions and the resources of
// responses it has not acknowledged yet. Each ztunnel is connected to one
// replica (either, behind the Service), so the views are merged.
type ackObserver struct {
	cs []*nsClient
	// rtts are the durations of the polls taken (all replicas), for the
	// resolution.
	rtts []time.Duration
}

// newAckObserver opens the network namespace of every istiod-lite process
// of the lab.
func (b *bench) newAckObserver() (*ackObserver, error) {
	ps, err := findProcs(filepath.Join(b.binDir, "istiod-lite"), "")
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no istiod-lite process found")
	}
	o := &ackObserver{}
	for _, p := range ps {
		c, err := newNSClient(fmt.Sprintf("/proc/%d/ns/net", p.PID), true, 5*time.Second)
		if err != nil {
			_ = o.Close()
			return nil, err
		}
		o.cs = append(o.cs, c)
	}
	return o, nil
}

// Close closes every replica's client; idempotent.
func (o *ackObserver) Close() error {
	for _, c := range o.cs {
		_ = c.Close() // a handle and idle connections only
	}
	o.cs = nil
	return nil
}

// ztunnels returns the address-type view of every ztunnel connected to any
// replica, keyed by replica and xDS node id (ztunnel~IP~pod.ns~...).
func (o *ackObserver) ztunnels(ctx context.Context) (map[string]xds.TypeStatus, error) {
	start := time.Now()
	out := map[string]xds.TypeStatus{}
	for i, c := range o.cs {
		body, err := c.get(ctx, "http://"+istiodDebugAddr+"/debug/clients?versions=true")
		if err != nil {
			return nil, fmt.Errorf("istiod-lite debug clients: %w", err)
		}
		views, err := parseZtunnelViews(body)
		if err != nil {
			return nil, err
		}
		for node, ts := range views {
			out[fmt.Sprintf("%d/%s", i, node)] = ts
		}
	}
	o.rtts = append(o.rtts, time.Since(start))
	return out, nil
}

// parseZtunnelViews decodes a /debug/clients answer into the ztunnels'
// views of the address type, by node id.
func parseZtunnelViews(body []byte) (map[string]xds.TypeStatus, error) {
	var dump struct {
		Clients []xds.ClientStatus `json:"clients"`
	}
	if err := json.Unmarshal(body, &dump); err != nil {
		return nil, fmt.Errorf("decode debug clients: %w", err)
	}
	out := map[string]xds.TypeStatus{}
	for _, c := range dump.Clients {
		if !strings.HasPrefix(c.Node, "ztunnel~") {
			continue
		}
		if ts, ok := c.Types[model.AddressType]; ok {
			out[c.Node] = ts
		}
	}
	return out, nil
}

// ackState is what one ztunnel holds of one resource, acknowledged: held
// with version, or not held; ok is false while a response carrying the
// resource awaits its ACK.
type ackState struct {
	version string
	held    bool
	ok      bool
}

func stateOf(ts xds.TypeStatus, name string) ackState {
	if _, pending := slices.BinarySearch(ts.Pending, name); pending {
		return ackState{}
	}
	v, held := ts.Versions[name]
	return ackState{version: v, held: held, ok: true}
}

// allAcked reports whether at least want distinct ztunnels are connected
// and every connection of a ztunnel (keyed replica/node id) has
// acknowledged a state of name that done accepts.
func allAcked(views map[string]xds.TypeStatus, want int, name string, done func(ackState) bool) bool {
	nodes := map[string]bool{}
	for key, ts := range views {
		_, node, _ := strings.Cut(key, "/")
		nodes[node] = true
		s := stateOf(ts, name)
		if !s.ok || !done(s) {
			return false
		}
	}
	return len(nodes) >= want
}

// mtlsSources reads a ztunnel metrics page and returns, per source
// workload of namespace ns, the connections its outbound side opened over
// HBONE (reporter="source", connection_security_policy="mutual_tls").
func mtlsSources(page []byte, ns string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(page)))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		rest, ok := strings.CutPrefix(l, "istio_tcp_connections_opened_total{")
		if !ok {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			continue
		}
		labels := promLabels(rest[:end])
		if labels["reporter"] != "source" || labels["connection_security_policy"] != "mutual_tls" || labels["source_workload_namespace"] != ns {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[end+1:]), 64)
		if err != nil {
			continue
		}
		out[labels["source_workload"]] += v
	}
	return out
}

// promLabels parses a Prometheus text-format label set (without braces).
func promLabels(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return out
		}
		key := strings.TrimSpace(strings.TrimPrefix(s[:eq], ","))
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			val.WriteByte(s[i])
		}
		out[key] = val.String()
		if i >= len(s) {
			return out
		}
		s = strings.TrimPrefix(s[i+1:], ",")
	}
	return out
}
