package flow

import (
	"context"
	"net/netip"
	"strings"
	"sync"

	"github.com/weftmesh/weft/pkg/api/l7api"
	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/wds"
)

// Source is the client of a flow.
type Source struct {
	// Principal is the HBONE peer's verified identity: the client
	// workload's, which its ztunnel presents.
	Principal identity.ID
	// Addr is the original client address (from the tunnel's Forwarded
	// header, else the tunnel's remote address).
	Addr netip.AddrPort
	// Workload is the client workload when the mesh knows its address.
	Workload *wds.Workload
}

// Destination is where a flow was going.
type Destination struct {
	// Authority is the CONNECT authority: a Service VIP:port or a pod
	// IP:port.
	Authority netip.AddrPort
	// Service is the destination Service, nil when a pod was addressed
	// directly.
	Service *wds.Service
	// Workload is the addressed pod, for flows sent to a pod address.
	Workload *wds.Workload
	// Port is the destination (Service) port.
	Port uint16
	// Protocol is the port's declared protocol (PROTOCOL_UNSPECIFIED when
	// it was sniffed).
	Protocol l7api.Protocol
}

// Hostname is the destination Service's hostname, or "" for a pod.
func (d *Destination) Hostname() string {
	if d.Service == nil {
		return ""
	}
	return d.Service.Hostname()
}

// ServiceName is the destination Service as "namespace/name", or "" for
// a flow addressed to a pod (Service-targeted policies do not apply to it).
func (d *Destination) ServiceName() string {
	if d.Service == nil {
		return ""
	}
	name := d.Service.Proto.GetName()
	if name == "" {
		name, _, _ = strings.Cut(d.Service.Hostname(), ".")
	}
	return d.Service.Namespace() + "/" + name
}

// Namespace is the destination's namespace.
func (d *Destination) Namespace() string {
	switch {
	case d.Service != nil:
		return d.Service.Namespace()
	case d.Workload != nil:
		return d.Workload.Namespace()
	}
	return ""
}

// Flow is one connection through the waypoint.
type Flow struct {
	Source      Source
	Destination Destination
	// TunnelAddr is the client ztunnel's address.
	TunnelAddr netip.AddrPort

	// derived caches strings every request of the flow would otherwise
	// build again; filled on first use, after which the flow must not
	// change.
	derived struct {
		once                   sync.Once
		principal, serviceName string
	}
}

func (f *Flow) derive() {
	f.derived.once.Do(func() {
		f.derived.principal = f.Source.Principal.String()
		f.derived.serviceName = f.Destination.ServiceName()
	})
}

// SourcePrincipal is Source.Principal.String(), built once per flow.
func (f *Flow) SourcePrincipal() string {
	f.derive()
	return f.derived.principal
}

// ServiceName is Destination.ServiceName(), built once per flow.
func (f *Flow) ServiceName() string {
	f.derive()
	return f.derived.serviceName
}

type ctxKey struct{}

// NewContext returns ctx carrying f.
func NewContext(ctx context.Context, f *Flow) context.Context {
	return context.WithValue(ctx, ctxKey{}, f)
}

// FromContext returns the flow ctx carries, or nil.
func FromContext(ctx context.Context) *Flow {
	f, _ := ctx.Value(ctxKey{}).(*Flow)
	return f
}
