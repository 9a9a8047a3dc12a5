package manifests

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weftmesh/weft/manifests/crds"
)

var (
	installOnce sync.Once
	installObjs []*unstructured.Unstructured
	installErr  error
	installDir  string
)

// TestMain removes the rendered copy.
func TestMain(m *testing.M) {
	code := m.Run()
	if installDir != "" {
		_ = os.RemoveAll(installDir)
	}
	os.Exit(code)
}

// renderInstall copies this folder's YAML into a temporary folder,
// assembles the CRDs into it from the module cache (as `weft-build crds`
// does) and renders the top-level kustomization, once per test binary.
func renderInstall(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	installOnce.Do(func() {
		installDir, installErr = os.MkdirTemp("", "weft-manifests-test-")
		if installErr != nil {
			return
		}
		if installErr = copyYAML(".", installDir); installErr != nil {
			return
		}
		_, installErr = crds.Assemble(context.Background(), crds.Config{
			OutDir: filepath.Join(installDir, "base", "crds", "generated"),
		})
		if installErr != nil {
			return
		}
		installObjs, installErr = Render(installDir)
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
	return installObjs
}

// copyYAML copies every .yaml file under src, except generated ones, to
// dst, keeping the layout.
func copyYAML(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "generated" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".yaml") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, p)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
}

// typedScheme knows every kind the manifests may hold.
func typedScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, gatewayv1.Install} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// toTyped converts u into its Go type, failing on unknown kinds and on
// unknown fields (a typo in a manifest).
func toTyped(t *testing.T, s *runtime.Scheme, u *unstructured.Unstructured) runtime.Object {
	t.Helper()
	obj, err := s.New(u.GroupVersionKind())
	if err != nil {
		t.Fatalf("%s %s: unknown kind: %v", u.GetKind(), u.GetName(), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, obj, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return obj
}

// typed converts objs and returns them by "Kind/namespace/name".
func typed(t *testing.T, objs []*unstructured.Unstructured) map[string]runtime.Object {
	t.Helper()
	s := typedScheme(t)
	out := map[string]runtime.Object{}
	for _, u := range objs {
		key := u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
		if _, dup := out[key]; dup {
			t.Fatalf("%s appears twice", key)
		}
		out[key] = toTyped(t, s, u)
	}
	return out
}

func get[T runtime.Object](t *testing.T, objs map[string]runtime.Object, key string) T {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		t.Fatalf("no %s in the rendered manifests", key)
	}
	v, ok := o.(T)
	if !ok {
		t.Fatalf("%s is a %T", key, o)
	}
	return v
}
