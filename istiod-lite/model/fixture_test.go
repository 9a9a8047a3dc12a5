package model

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	istioscheme "istio.io/client-go/pkg/clientset/versioned/scheme"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testScheme(t testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, istioscheme.AddToScheme, gatewayv1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// loadObjects decodes a multi-document YAML fixture.
func loadObjects(t testing.TB, path string) []runtime.Object {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read-only
	dec := serializer.NewCodecFactory(testScheme(t)).UniversalDeserializer()
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 || strings.TrimSpace(string(doc)) == "---" {
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, obj)
	}
}

// feed hands objects to the model the way the informers would.
func feed(t testing.TB, m *Model, objs []runtime.Object) {
	t.Helper()
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			m.UpsertNamespace(o)
		case *corev1.Pod:
			m.UpsertPod(o)
		case *corev1.Service:
			m.UpsertService(o)
		case *discoveryv1.EndpointSlice:
			m.UpsertEndpointSlice(o)
		case *gatewayv1.Gateway:
			m.UpsertGateway(o)
		case *securityv1.AuthorizationPolicy:
			m.UpsertAuthorizationPolicy(o)
		case *securityv1.PeerAuthentication:
			m.UpsertPeerAuthentication(o)
		default:
			t.Fatalf("unexpected fixture object %T", o)
		}
	}
}

type dumpEntry struct {
	Name     string          `json:"name"`
	Aliases  []string        `json:"aliases,omitempty"`
	Resource json.RawMessage `json:"resource"`
}

// dump renders the model's resources as stable, indented JSON.
func dump(t testing.TB, m *Model) []byte {
	t.Helper()
	out := map[string][]dumpEntry{}
	for _, typ := range []string{AddressType, AuthorizationType} {
		rs := m.All(typ)
		slices.SortFunc(rs, func(a, b *Resource) int { return strings.Compare(a.Name, b.Name) })
		entries := []dumpEntry{}
		for _, r := range rs {
			msg, err := r.Decode()
			if err != nil {
				t.Fatal(err)
			}
			b, err := protojson.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			var c bytes.Buffer
			if err := json.Compact(&c, b); err != nil {
				t.Fatal(err)
			}
			entries = append(entries, dumpEntry{Name: r.Name, Aliases: r.Aliases, Resource: c.Bytes()})
		}
		out[typ[strings.LastIndex(typ, ".")+1:]] = entries
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	fixtures, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(fixtures) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, fx := range fixtures {
		name := strings.TrimSuffix(filepath.Base(fx), ".yaml")
		t.Run(name, func(t *testing.T) {
			m := New(Config{RequireRedirection: true}, slog.New(slog.DiscardHandler))
			feed(t, m, loadObjects(t, fx))
			got := dump(t, m)
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if d := cmp.Diff(string(want), string(got)); d != "" {
				t.Errorf("%s (-want +got):\n%s", golden, d)
			}
		})
	}
}
