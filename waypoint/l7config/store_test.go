package l7config

import (
	"errors"
	"strings"
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

const echoHost = "echo.demo.svc.cluster.local"

func res(t *testing.T, name string, m proto.Message) *discoveryv3.Resource {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.Resource{Name: name, Version: "1", Resource: a}
}

func echoRoutes(retryOn ...string) *l7api.RouteConfig {
	return &l7api.RouteConfig{
		Service:       &l7api.ServiceRef{Namespace: "demo", Name: "echo", Hostname: echoHost},
		PortProtocols: map[uint32]l7api.Protocol{80: l7api.Protocol_HTTP, 9090: l7api.Protocol_GRPC},
		Routes: []*l7api.Route{{
			Name:      "HTTPRoute/demo/echo/0",
			Backends:  []*l7api.WeightedBackend{{Service: &l7api.ServiceRef{Namespace: "demo", Name: "echo", Hostname: echoHost}, Port: 80, Weight: 1}},
			Retry:     &l7api.RetryPolicy{Attempts: 2, RetryOn: retryOn},
			RateLimit: &l7api.RateLimit{MaxTokens: 10, TokensPerFill: 10, FillInterval: durationpb.New(1e9)},
		}},
	}
}

func TestApply(t *testing.T) {
	s := New(nil)
	if err := s.Apply(l7api.RouteConfigType, []*discoveryv3.Resource{res(t, echoHost, echoRoutes("5xx"))}, nil); err != nil {
		t.Fatal(err)
	}
	snap := s.Current()
	if snap.Version != 1 || snap.Protocol(echoHost, 9090) != l7api.Protocol_GRPC || snap.Protocol("ECHO.demo.svc.cluster.local", 80) != l7api.Protocol_HTTP ||
		snap.Protocol(echoHost, 81) != l7api.Protocol_PROTOCOL_UNSPECIFIED {
		t.Errorf("snapshot %+v", snap)
	}
	if snap.Retries["HTTPRoute/demo/echo/0"] == nil || snap.Limiters["HTTPRoute/demo/echo/0"] == nil {
		t.Errorf("retry policy or limiter not compiled: %v %v", snap.Retries, snap.Limiters)
	}
	select {
	case <-s.Synced():
		t.Fatal("synced before every type arrived")
	default:
	}
	for _, typ := range []string{l7api.L7PolicyType, l7api.TrafficPolicyType} {
		if err := s.Apply(typ, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	<-s.Synced()

	// Removal.
	if err := s.Apply(l7api.RouteConfigType, nil, []string{echoHost, "unknown"}); err != nil {
		t.Fatal(err)
	}
	if p := s.Current().Protocol(echoHost, 80); p != l7api.Protocol_PROTOCOL_UNSPECIFIED {
		t.Errorf("removed route config still declares %v", p)
	}
}

func TestRejectKeepsLastGood(t *testing.T) {
	goodPolicy := &l7api.L7Policy{Name: "deny", Namespace: "demo", Action: l7api.Action_DENY,
		Targets: []*l7api.PolicyTarget{{Kind: l7api.PolicyTarget_SERVICE, Namespace: "demo", Name: "echo"}},
		Rules:   []*l7api.L7Rule{{To: []*l7api.Operation{{Methods: []string{"DELETE"}}}}}}
	tests := []struct {
		name    string
		typ     string
		res     func(t *testing.T) *discoveryv3.Resource
		wantErr []string
	}{
		{"route config named for another host", l7api.RouteConfigType,
			func(t *testing.T) *discoveryv3.Resource { return res(t, "other.demo.svc.cluster.local", echoRoutes()) },
			[]string{"RouteConfig", "other.demo.svc.cluster.local", "service.hostname"}},
		{"unknown retry condition", l7api.RouteConfigType,
			func(t *testing.T) *discoveryv3.Resource { return res(t, echoHost, echoRoutes("sometimes")) },
			[]string{"RouteConfig", echoHost, "routes[0].retry"}},
		{"wrong message type", l7api.RouteConfigType,
			func(t *testing.T) *discoveryv3.Resource { return res(t, echoHost, goodPolicy) },
			[]string{"RouteConfig", echoHost, "resource"}},
		{"policy name mismatch", l7api.L7PolicyType,
			func(t *testing.T) *discoveryv3.Resource { return res(t, "demo/other", goodPolicy) },
			[]string{"L7Policy", "demo/other", "namespace/name"}},
		{"bad ejection percent", l7api.TrafficPolicyType,
			func(t *testing.T) *discoveryv3.Resource {
				return res(t, echoHost, &l7api.TrafficPolicy{Service: &l7api.ServiceRef{Hostname: echoHost},
					OutlierDetection: &l7api.OutlierDetection{MaxEjectionPercent: 101}})
			},
			[]string{"TrafficPolicy", echoHost, "outlier_detection.max_ejection_percent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(nil)
			if err := s.Apply(l7api.RouteConfigType, []*discoveryv3.Resource{res(t, echoHost, echoRoutes("5xx"))}, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Apply(l7api.L7PolicyType, []*discoveryv3.Resource{res(t, "demo/deny", goodPolicy)}, nil); err != nil {
				t.Fatal(err)
			}
			before := s.Current()
			err := s.Apply(tt.typ, []*discoveryv3.Resource{tt.res(t)}, nil)
			if err == nil {
				t.Fatal("bad resource accepted")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if s.Current() != before {
				t.Error("a rejected response changed the configuration")
			}
			if got := s.Dump()["lastRejection"]; got != err.Error() {
				t.Errorf("dump lastRejection = %v", got)
			}
		})
	}
	if err := New(nil).Apply("type.googleapis.com/other", nil, nil); !errors.Is(err, ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
}
