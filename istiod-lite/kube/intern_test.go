package kube

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/weftmesh/weft/istiod-lite/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestMapInterner(t *testing.T) {
	var in mapInterner
	a := in.intern(map[string]string{"app": "x", "version": "v1"})
	b := in.intern(map[string]string{"version": "v1", "app": "x"})
	if reflect.ValueOf(a).Pointer() != reflect.ValueOf(b).Pointer() {
		t.Error("equal maps not shared")
	}
	c := in.intern(map[string]string{"app": "x", "version": "v2"})
	if reflect.ValueOf(a).Pointer() == reflect.ValueOf(c).Pointer() || c["version"] != "v2" {
		t.Error("different maps shared")
	}
	// Keys and values are separated unambiguously.
	d := in.intern(map[string]string{"a": "b\x00c"})
	e := in.intern(map[string]string{"a\x00b": "c"})
	if len(d) != 1 || d["a"] != "b\x00c" || e["a\x00b"] != "c" {
		t.Errorf("ambiguous encoding: %v %v", d, e)
	}
	if in.intern(map[string]string{}) != nil || in.intern(nil) != nil {
		t.Error("empty map not nil")
	}
	// The table is bounded: it starts afresh when full, and maps handed out
	// keep their content.
	for i := range maxInterned + 10 {
		in.intern(map[string]string{"i": fmt.Sprint(i)})
	}
	if n := len(in.table); n > maxInterned {
		t.Errorf("table holds %d maps, more than %d", n, maxInterned)
	}
	if a["app"] != "x" || a["version"] != "v1" {
		t.Errorf("handed-out map changed: %v", a)
	}
}

func TestTransformSharesPodMaps(t *testing.T) {
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns",
			Labels:      map[string]string{"app": "shared-" + t.Name()},
			Annotations: map[string]string{"ambient.istio.io/redirection": "enabled", "other": name}}}
	}
	p1, err := Transform(pod("a"))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Transform(pod("b"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := p1.(*model.Pod), p2.(*model.Pod)
	if reflect.ValueOf(a.Labels).Pointer() != reflect.ValueOf(b.Labels).Pointer() {
		t.Error("labels not shared")
	}
	if reflect.ValueOf(a.Annotations).Pointer() != reflect.ValueOf(b.Annotations).Pointer() || len(a.Annotations) != 1 {
		t.Errorf("kept annotations not shared: %v %v", a.Annotations, b.Annotations)
	}
}
