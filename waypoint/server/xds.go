package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/xds"
	"github.com/weftmesh/weft/waypoint/l7config"
	"github.com/weftmesh/weft/waypoint/telemetry"
)

// dispatch hands each xDS response to the store that consumes its type and
// counts it. l7Changed, when set, hears of every L7 configuration change
// (the page releaser: compiling routes and policies runs code the requests
// never do).
type dispatch struct {
	byType    map[string]xds.Handler
	metrics   *telemetry.Metrics
	l7Changed func()
}

var _ xds.Handler = dispatch{}

func (d dispatch) Apply(typeURL string, resources []*discoveryv3.Resource, removed []string) error {
	d.metrics.XDSMessage(typeURL)
	h, ok := d.byType[typeURL]
	if !ok {
		return fmt.Errorf("unexpected type URL %s", typeURL)
	}
	if d.l7Changed != nil && slices.Contains(l7config.Types, typeURL) {
		d.l7Changed()
	}
	return h.Apply(typeURL, resources, removed)
}

// nodeProto identifies the waypoint as Istio's proxies do:
// waypoint~<ip>~<pod>.<ns>~<ns>.svc.<domain>, with the Gateway in the
// metadata.
func nodeProto(cfg Config) *corev3.Node {
	ip := ""
	if cfg.PodIP.IsValid() {
		ip = cfg.PodIP.String()
	}
	id := fmt.Sprintf("waypoint~%s~%s.%s~%s.svc.%s", ip, cfg.PodName, cfg.PodNamespace, cfg.PodNamespace, cfg.DomainSuffix)
	md, _ := structpb.NewStruct(map[string]any{
		"NAME": cfg.PodName, "NAMESPACE": cfg.PodNamespace, "INSTANCE_IPS": ip, "NODE_NAME": cfg.NodeName,
		"CLUSTER_ID": cfg.ClusterID, "SERVICE_ACCOUNT": cfg.ServiceAccount, "GATEWAY_NAME": cfg.GatewayName,
	})
	return &corev3.Node{Id: id, Metadata: md}
}

func readRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read root certificate: %w", err)
	}
	certs, err := identity.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("root certificate %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func xdsTLS(cfg Config, roots *x509.CertPool) *tls.Config {
	if cfg.XDSPlaintext {
		return nil
	}
	host, _, _ := net.SplitHostPort(cfg.XDSAddress)
	return &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
}
