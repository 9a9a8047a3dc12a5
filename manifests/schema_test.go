package manifests

import (
	"testing"
	"time"

	"github.com/weftmesh/weft/istiod-lite/gatewayclass"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwfake "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned/fake"
)

// TestCustomResourcesMatchTheirCRDs validates every custom resource of the
// install (and of the samples), and the GatewayClass istiod-lite creates,
// against the OpenAPI schema of its CRD, as the API server does (lengths,
// enums, patterns, required fields; not the CEL rules).
func TestCustomResourcesMatchTheirCRDs(t *testing.T) {
	install := renderInstall(t)
	samples, err := Render("samples")
	if err != nil {
		t.Fatal(err)
	}
	samples = append(samples, istiodGatewayClass(t))
	schemas := map[string]*apiextensionsv1.JSONSchemaProps{} // "group/version/Kind"
	s := typedScheme(t)
	for _, u := range install {
		if u.GetKind() != "CustomResourceDefinition" {
			continue
		}
		crd := toTyped(t, s, u).(*apiextensionsv1.CustomResourceDefinition)
		for _, v := range crd.Spec.Versions {
			if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
				schemas[crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Kind] = v.Schema.OpenAPIV3Schema
			}
		}
	}
	checked := 0
	for _, u := range append(append([]*unstructured.Unstructured(nil), install...), samples...) {
		gvk := u.GroupVersionKind()
		v1schema, ok := schemas[gvk.Group+"/"+gvk.Version+"/"+gvk.Kind]
		if !ok {
			continue
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1schema, &internal, nil); err != nil {
			t.Fatal(err)
		}
		sv, _, err := validation.NewSchemaValidator(&internal)
		if err != nil {
			t.Fatalf("%s schema: %v", gvk, err)
		}
		if errs := validation.ValidateCustomResource(field.NewPath(""), runtime.DeepCopyJSON(u.Object), sv); len(errs) > 0 {
			t.Errorf("%s %s: %v", gvk.Kind, u.GetName(), errs.ToAggregate())
		}
		checked++
	}
	if checked == 0 {
		t.Error("no custom resource was checked (the GatewayClass should be)")
	}
}

// istiodGatewayClass is the GatewayClass istiod-lite creates and accepts,
// spec and status, as it would reach the API server.
func istiodGatewayClass(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	c := gwfake.NewClientset()
	if err := gatewayclass.Ensure(t.Context(), c.GatewayV1(), time.Now); err != nil {
		t.Fatal(err)
	}
	gc, err := c.GatewayV1().GatewayClasses().Get(t.Context(), gatewayclass.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gc.ManagedFields = nil
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(gc)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(gatewayv1.GroupVersion.String())
	u.SetKind("GatewayClass")
	return u
}
