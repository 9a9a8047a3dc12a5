package telemetry

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/waypoint/flow"
)

// Reporter is the reporter label of every metric the waypoint records.
const Reporter = "waypoint"

// labelNames are Istio's standard metric labels, in the order of
// Labels.values.
var labelNames = []string{
	"reporter",
	"source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
	"source_canonical_service", "source_canonical_revision", "source_cluster",
	"destination_workload", "destination_workload_namespace", "destination_principal", "destination_app",
	"destination_version", "destination_canonical_service", "destination_canonical_revision", "destination_cluster",
	"destination_service", "destination_service_namespace", "destination_service_name",
	"request_protocol", "response_flags", "connection_security_policy",
}

// Peer describes one side of a request for metric labels.
type Peer struct {
	Workload, Namespace, Principal, App, Version string
	CanonicalService, CanonicalRevision, Cluster string
}

// PeerOf describes workload w (nil when unknown) with principal, which
// wins over the workload's own identity when not empty.
func PeerOf(w *wds.Workload, principal string) Peer {
	p := Peer{Principal: principal}
	if w == nil {
		return p
	}
	wp := w.Proto
	p.Workload = wp.GetWorkloadName()
	if p.Workload == "" {
		p.Workload = wp.GetName()
	}
	p.Namespace = wp.GetNamespace()
	if p.Principal == "" {
		p.Principal = w.Identity.String()
	}
	p.App, p.Version = wp.GetCanonicalName(), wp.GetCanonicalRevision()
	p.CanonicalService, p.CanonicalRevision = wp.GetCanonicalName(), wp.GetCanonicalRevision()
	p.Cluster = wp.GetClusterId()
	return p
}

// Labels are the label values of one request or connection.
type Labels struct {
	Source, Destination Peer
	// DestinationService is the destination Service hostname; its
	// namespace and name follow.
	DestinationService, DestinationServiceNamespace, DestinationServiceName string
	// RequestProtocol is "http", "grpc" or "tcp".
	RequestProtocol string
	// ResponseFlags are Envoy's response flags ("-" when none).
	ResponseFlags string
}

// LabelsOf fills the source and destination-service labels from f.
func LabelsOf(f *flow.Flow) Labels {
	principal := ""
	if !f.Source.Principal.IsZero() {
		principal = f.SourcePrincipal()
	}
	l := Labels{Source: PeerOf(f.Source.Workload, principal)}
	if principal != "" {
		if l.Source.Namespace == "" {
			l.Source.Namespace = f.Source.Principal.Namespace
		}
	}
	if d := f.Destination; d.Service != nil {
		l.DestinationService = d.Service.Hostname()
		l.DestinationServiceNamespace = d.Service.Namespace()
		l.DestinationServiceName = d.Service.Proto.GetName()
	} else if d.Workload != nil {
		l.Destination = PeerOf(d.Workload, "")
		l.DestinationService = d.Authority.Addr().String()
		l.DestinationServiceNamespace = d.Workload.Namespace()
	}
	return l
}

func (l Labels) values() []string {
	v := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	flags := l.ResponseFlags
	if flags == "" {
		flags = "-"
	}
	s, d := l.Source, l.Destination
	return []string{
		Reporter,
		v(s.Workload), v(s.Namespace), v(s.Principal), v(s.App), v(s.Version),
		v(s.CanonicalService), v(s.CanonicalRevision), v(s.Cluster),
		v(d.Workload), v(d.Namespace), v(d.Principal), v(d.App),
		v(d.Version), v(d.CanonicalService), v(d.CanonicalRevision), v(d.Cluster),
		v(l.DestinationService), v(l.DestinationServiceNamespace), v(l.DestinationServiceName),
		v(l.RequestProtocol), flags, "mutual_tls",
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// PeerCache memoises PeerOf(w, "") by workload, sparing each request the
// identity string it would build: the mesh replaces a workload on change
// rather than modifying it, so a pointer names one description. It holds
// at most peerCacheMax workloads (then starts over). The zero value is
// ready; it is safe for concurrent use.
type PeerCache struct {
	m sync.Map // *wds.Workload -> Peer
	n atomic.Int64
}

const peerCacheMax = 8192

// Of returns PeerOf(w, "").
func (c *PeerCache) Of(w *wds.Workload) Peer {
	if w == nil {
		return Peer{}
	}
	if p, ok := c.m.Load(w); ok {
		return p.(Peer)
	}
	if c.n.Add(1) > peerCacheMax {
		c.m.Clear()
		c.n.Store(1)
	}
	p := PeerOf(w, "")
	c.m.Store(w, p)
	return p
}
