package zdump

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
	"github.com/weftmesh/weft/pkg/api/securityapi"
	"github.com/weftmesh/weft/pkg/api/workloadapi"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
	"github.com/weftmesh/weft/ztunnel/telemetry"
	"github.com/weftmesh/weft/ztunnel/udp"
)

// Filter narrows a view. Empty fields match everything.
type Filter struct {
	// Namespace keeps workloads, services, policies and connections of one
	// namespace (--workload-namespace).
	Namespace string
	// Address keeps entries with this IP (a workload address, a service
	// VIP, or a connection's local or remote address).
	Address string
	// Node keeps workloads scheduled on this node.
	Node string
}

func (f Filter) addr(as []netip.Addr) bool {
	if f.Address == "" {
		return true
	}
	for _, a := range as {
		if a.String() == f.Address {
			return true
		}
	}
	return false
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func gateway(g *workloadapi.GatewayAddress) string {
	if g == nil {
		return "None"
	}
	if h := g.GetHostname(); h != nil {
		return h.GetHostname()
	}
	if a := g.GetAddress(); a != nil {
		if ip := ips([][]byte{a.GetAddress()}); len(ip) == 1 {
			return ip[0].String()
		}
	}
	return "None"
}

// Workloads is `ztunnel-config workloads`: NAMESPACE POD NAME ADDRESS NODE
// WAYPOINT PROTOCOL (wide: SERVICE ACCOUNT STATUS UID).
func Workloads(d *Dump, f Filter) (printer.TableData, []Item[*workloadapi.Workload]) {
	t := printer.TableData{
		Header:     []string{"NAMESPACE", "POD NAME", "ADDRESS", "NODE", "WAYPOINT", "PROTOCOL"},
		WideHeader: []string{"SERVICE ACCOUNT", "STATUS", "UID"},
	}
	items := []Item[*workloadapi.Workload]{}
	for _, it := range d.Workloads {
		w := it.Msg
		as := ips(w.GetAddresses())
		if (f.Namespace != "" && w.GetNamespace() != f.Namespace) || (f.Node != "" && w.GetNode() != f.Node) || !f.addr(as) {
			continue
		}
		items = append(items, it)
		proto := "TCP"
		if w.GetTunnelProtocol() == workloadapi.TunnelProtocol_HBONE {
			proto = "HBONE"
		}
		sa := w.GetServiceAccount()
		if sa == "" {
			sa = "default"
		}
		t.Rows = append(t.Rows, []string{w.GetNamespace(), w.GetName(), joinAddrs(as), w.GetNode(), gateway(w.GetWaypoint()), proto})
		t.WideRows = append(t.WideRows, []string{sa, w.GetStatus().String(), w.GetUid()})
	}
	return t, items
}

// Services is `ztunnel-config services`: NAMESPACE SERVICE NAME SERVICE VIP
// WAYPOINT ENDPOINTS, the latter as healthy/total workloads behind it
// (wide: PORTS).
func Services(d *Dump, f Filter) (printer.TableData, []Item[*workloadapi.Service]) {
	t := printer.TableData{
		Header:     []string{"NAMESPACE", "SERVICE NAME", "SERVICE VIP", "WAYPOINT", "ENDPOINTS"},
		WideHeader: []string{"PORTS"},
	}
	healthy, total := map[string]int{}, map[string]int{}
	for _, w := range d.Workloads {
		for key := range w.Msg.GetServices() {
			total[key]++
			if w.Msg.GetStatus() == workloadapi.WorkloadStatus_HEALTHY {
				healthy[key]++
			}
		}
	}
	items := []Item[*workloadapi.Service]{}
	for _, it := range d.Services {
		s := it.Msg
		var vips []netip.Addr
		for _, a := range s.GetAddresses() {
			vips = append(vips, ips([][]byte{a.GetAddress()})...)
		}
		if (f.Namespace != "" && s.GetNamespace() != f.Namespace) || !f.addr(vips) {
			continue
		}
		items = append(items, it)
		key := s.GetNamespace() + "/" + s.GetHostname()
		var ports []string
		for _, p := range s.GetPorts() {
			tp := p.GetTargetPort()
			if tp == 0 {
				tp = p.GetServicePort()
			}
			ports = append(ports, fmt.Sprintf("%d->%d", p.GetServicePort(), tp))
		}
		t.Rows = append(t.Rows, []string{s.GetNamespace(), s.GetHostname(), joinAddrs(vips), gateway(s.GetWaypoint()),
			fmt.Sprintf("%d/%d", healthy[key], total[key])})
		t.WideRows = append(t.WideRows, []string{strings.Join(ports, ",")})
	}
	return t, items
}

// ActionName and ScopeName spell a policy's action and scope as istioctl
// does: Allow/Deny, Global/Namespace/WorkloadSelector.
func ActionName(a securityapi.Action) string {
	if a == securityapi.Action_DENY {
		return "Deny"
	}
	return "Allow"
}

// ScopeName: see ActionName.
func ScopeName(s securityapi.Scope) string {
	switch s {
	case securityapi.Scope_NAMESPACE:
		return "Namespace"
	case securityapi.Scope_WORKLOAD_SELECTOR:
		return "WorkloadSelector"
	}
	return "Global"
}

// Policies is `ztunnel-config policies`: NAMESPACE POLICY NAME ACTION SCOPE
// (wide: DRY RUN RULES).
func Policies(d *Dump, f Filter) (printer.TableData, []Item[*securityapi.Authorization]) {
	t := printer.TableData{
		Header:     []string{"NAMESPACE", "POLICY NAME", "ACTION", "SCOPE"},
		WideHeader: []string{"DRY RUN", "RULES"},
	}
	items := []Item[*securityapi.Authorization]{}
	for _, it := range d.Policies {
		p := it.Msg
		if f.Namespace != "" && p.GetNamespace() != f.Namespace {
			continue
		}
		items = append(items, it)
		t.Rows = append(t.Rows, []string{p.GetNamespace(), p.GetName(), ActionName(p.GetAction()), ScopeName(p.GetScope())})
		t.WideRows = append(t.WideRows, []string{strconv.FormatBool(p.GetDryRun()), strconv.Itoa(len(p.GetRules()))})
	}
	return t, items
}

// CertRow is one certificate of an identity's chain.
type CertRow struct {
	Identity  string    `json:"identity"`
	Type      string    `json:"type"`
	State     string    `json:"state"`
	Valid     bool      `json:"valid"`
	Serial    string    `json:"serial,omitempty"`
	NotAfter  time.Time `json:"notAfter,omitzero"`
	NotBefore time.Time `json:"notBefore,omitzero"`
	LastError string    `json:"lastError,omitempty"`
}

// CertRows expands each identity's chain into rows, leaf first; an
// identity without a certificate gets one Leaf row with its state.
func CertRows(certs []certmgr.Status, now time.Time) []CertRow {
	var out []CertRow
	for _, s := range certs {
		id := s.ID.String()
		chain := parseChain(s.ChainPEM)
		if len(chain) == 0 {
			out = append(out, CertRow{Identity: id, Type: "Leaf", State: string(s.State), LastError: s.LastError})
			continue
		}
		for i, c := range chain {
			typ := "Intermediate"
			switch {
			case i == 0:
				typ = "Leaf"
			case i == len(chain)-1 && c.Subject.String() == c.Issuer.String():
				typ = "Root"
			}
			out = append(out, CertRow{Identity: id, Type: typ, State: string(s.State),
				Valid:  !now.Before(c.NotBefore) && now.Before(c.NotAfter),
				Serial: c.SerialNumber.Text(16), NotAfter: c.NotAfter.UTC(), NotBefore: c.NotBefore.UTC(), LastError: s.LastError})
		}
	}
	return out
}

func parseChain(p string) []*x509.Certificate {
	var out []*x509.Certificate
	rest := []byte(p)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// Certificates is `ztunnel-config certificates`: CERTIFICATE NAME TYPE
// STATUS VALID CERT SERIAL NUMBER NOT AFTER NOT BEFORE (wide: LAST ERROR).
func Certificates(d *Dump, now time.Time) (printer.TableData, []CertRow) {
	t := printer.TableData{
		Header:     []string{"CERTIFICATE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER", "NOT AFTER", "NOT BEFORE"},
		WideHeader: []string{"LAST ERROR"},
	}
	rows := CertRows(d.Certificates, now)
	for _, r := range rows {
		t.Rows = append(t.Rows, []string{r.Identity, r.Type, r.State, strconv.FormatBool(r.Valid), r.Serial, ts(r.NotAfter), ts(r.NotBefore)})
		t.WideRows = append(t.WideRows, []string{r.LastError})
	}
	if rows == nil {
		rows = []CertRow{}
	}
	return t, rows
}

// Connections is `ztunnel-config connections`: WORKLOAD DIRECTION LOCAL
// REMOTE REMOTE TARGET PROTOCOL TRANSPORT (wide: SOURCE IDENTITY
// DESTINATION IDENTITY BYTES SENT BYTES RECV STARTED; the identities are
// the SPIFFE IDs of the mTLS leg, "-" for plaintext). PROTOCOL is Istio's
// (HBONE or TCP), or UDP for a UDP flow; TRANSPORT is HBONE's ("h2" or
// "quic"; "-" for TCP and UDP outside the mesh). The
// workload is shown as name.namespace when the dump knows its uid.
func Connections(d *Dump, f Filter) (printer.TableData, []telemetry.ConnState) {
	t := printer.TableData{
		Header:     []string{"WORKLOAD", "DIRECTION", "LOCAL", "REMOTE", "REMOTE TARGET", "PROTOCOL", "TRANSPORT"},
		WideHeader: []string{"SOURCE IDENTITY", "DESTINATION IDENTITY", "BYTES SENT", "BYTES RECV", "STARTED"},
	}
	out := []telemetry.ConnState{}
	conns := append(append([]telemetry.ConnState{}, d.Connections...), udpConns(d.UDPFlows)...)
	sort.SliceStable(conns, func(i, j int) bool { return conns[i].Workload < conns[j].Workload })
	for _, c := range conns {
		name, ns := c.Workload, ""
		if w := d.WorkloadByUID(c.Workload); w != nil {
			name, ns = w.GetName()+"."+w.GetNamespace(), w.GetNamespace()
		}
		if f.Namespace != "" && ns != f.Namespace {
			continue
		}
		if f.Address != "" && host(c.Local) != f.Address && host(c.Remote) != f.Address && host(c.RemoteTarget) != f.Address {
			continue
		}
		out = append(out, c)
		proto, transport := splitProtocol(c.Protocol)
		t.Rows = append(t.Rows, []string{name, c.Direction, c.Local, c.Remote, c.RemoteTarget, proto, transport})
		t.WideRows = append(t.WideRows, []string{orDash(c.SrcIdentity), orDash(c.DstIdentity),
			strconv.FormatInt(c.BytesSent, 10), strconv.FormatInt(c.BytesRecv, 10), ts(c.Started)})
	}
	return t, out
}

// udpConns shows the UDP flows that carry traffic as connections:
// PROTOCOL UDP, TRANSPORT quic through a CONNECT-UDP tunnel (REMOTE TARGET
// the tunnel's address), "-" when passed straight to a destination outside
// the mesh. Refused flows are left out, as refused TCP connections are.
func udpConns(flows []udp.FlowInfo) []telemetry.ConnState {
	var out []telemetry.ConnState
	for _, f := range flows {
		if f.Failed != "" || f.Path == "" {
			continue
		}
		c := telemetry.ConnState{Workload: f.Workload, Direction: f.Direction, Protocol: "UDP",
			BytesSent: f.BytesSent, BytesRecv: f.BytesRecv, Started: f.Opened}
		if f.Direction == "inbound" {
			c.Local, c.Remote, c.RemoteTarget, c.SrcIdentity = f.Dst, f.Src, f.Target, f.Peer
		} else {
			c.Local, c.Remote, c.RemoteTarget, c.DstIdentity = f.Src, f.Dst, f.Target, f.Peer
			if ap, err := netip.ParseAddrPort(f.Target); err == nil && f.Path == "tunnel" {
				c.RemoteTarget = netip.AddrPortFrom(ap.Addr(), 15008).String()
			}
		}
		if f.Path == "tunnel" {
			c.Protocol = "UDP_QUIC"
		}
		out = append(out, c)
	}
	return out
}

// splitProtocol splits the connection table's protocol into Istio's
// protocol and HBONE's transport: "HBONE" is HTTP/2, "HBONE_QUIC" HTTP/3;
// "UDP_QUIC" is a UDP flow through a CONNECT-UDP tunnel.
func splitProtocol(p string) (protocol, transport string) {
	switch p {
	case "UDP_QUIC":
		return "UDP", "quic"
	case "HBONE":
		return "HBONE", "h2"
	case "HBONE_QUIC":
		return "HBONE", "quic"
	}
	return p, "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func host(addrPort string) string {
	if ap, err := netip.ParseAddrPort(addrPort); err == nil {
		return ap.Addr().String()
	}
	return addrPort
}
