package waypoint

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testGateway() *gatewayv1.Gateway {
	return &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "waypoint", Namespace: "demo", UID: "gw-uid-1", Generation: 1,
			Labels: map[string]string{"istio.io/waypoint-for": "service"}},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: ClassName,
			Listeners:        []gatewayv1.Listener{{Name: "mesh", Port: 15008, Protocol: "HBONE"}},
		},
	}
}

func testConfig() Config {
	c := Config{Image: "weft/waypoint:dev", XDSAddress: "istiod.weft-system.svc:15012", ClusterID: "Kubernetes", TrustDomain: "cluster.local"}
	if err := c.Validate(); err != nil {
		panic(err)
	}
	return c
}

// TestObjectsGolden pins the applied ServiceAccount, Service and
// Deployment (regenerate with -update).
func TestObjectsGolden(t *testing.T) {
	gw := testGateway()
	for name, obj := range map[string]any{
		"serviceaccount": ServiceAccount(gw),
		"service":        Service(gw),
		"deployment":     Deployment(gw, testConfig()),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("%s differs from %s (-want +got):\n%s", name, path, d)
			}
		})
	}
}

// TestPodShape checks the properties the waypoint relies on, independent
// of the golden files' layout.
func TestPodShape(t *testing.T) {
	dep := Deployment(testGateway(), testConfig())
	pod := dep.Spec.Template.Spec
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod must not mount a Kubernetes API token")
	}
	if *pod.ServiceAccountName != "waypoint" {
		t.Errorf("service account %q", *pod.ServiceAccountName)
	}
	if pod.SecurityContext == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Error("pod must run as non-root")
	}
	labels := dep.Spec.Template.Labels
	for k, v := range map[string]string{LabelGatewayName: "waypoint", LabelDataplaneMode: "none", LabelManaged: ManagedValue} {
		if labels[k] != v {
			t.Errorf("pod label %s = %q, want %q", k, labels[k], v)
		}
	}
	ctr := pod.Containers[0]
	env := map[string]string{}
	for _, e := range ctr.Env {
		v := ""
		if e.Value != nil {
			v = *e.Value
		} else if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			v = "field:" + *e.ValueFrom.FieldRef.FieldPath
		}
		env[*e.Name] = v
	}
	want := map[string]string{
		"POD_NAME": "field:metadata.name", "POD_NAMESPACE": "field:metadata.namespace", "POD_IP": "field:status.podIP",
		"NODE_NAME": "field:spec.nodeName", "SERVICE_ACCOUNT": "field:spec.serviceAccountName",
		"GATEWAY_NAME": "waypoint", "XDS_ADDRESS": "istiod.weft-system.svc:15012", "CA_ADDRESS": "istiod.weft-system.svc:15012",
		"TOKEN_FILE": "/var/run/secrets/tokens/istio-token", "ROOT_CERT": "/var/run/secrets/istio/root-cert.pem",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if p := ctr.ReadinessProbe; p == nil || *p.HTTPGet.Path != "/healthz/ready" || p.HTTPGet.Port.IntValue() != PortStatus {
		t.Error("readiness probe must be GET :15021/healthz/ready")
	}
	var audience string
	for _, v := range pod.Volumes {
		if v.Projected != nil {
			audience = *v.Projected.Sources[0].ServiceAccountToken.Audience
		}
	}
	if audience != TokenAudience {
		t.Errorf("projected token audience %q, want %q", audience, TokenAudience)
	}
	var ports []int32
	for _, p := range Service(testGateway()).Spec.Ports {
		ports = append(ports, *p.Port)
	}
	if d := cmp.Diff([]int32{PortHBONE, PortStatus, PortMetrics}, ports); d != "" {
		t.Errorf("service ports (-want +got):\n%s", d)
	}
	if ref := dep.OwnerReferences[0]; *ref.Kind != "Gateway" || *ref.UID != "gw-uid-1" || !*ref.Controller {
		t.Errorf("owner reference %+v", ref)
	}
}
