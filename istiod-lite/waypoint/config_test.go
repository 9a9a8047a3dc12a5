package waypoint

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func TestImageFor(t *testing.T) {
	_, defTag, _ := strings.Cut(DefaultImage(), ":")
	for _, tc := range []struct{ own, want string }{
		{"weft/istiod-lite:dev", "weft/waypoint:dev"},
		{"registry.example:5000/weft/istiod-lite:v0.1.0", "registry.example:5000/weft/waypoint:v0.1.0"},
		{"istiod-lite:v2", "waypoint:v2"},
		{"registry.example:5000/istiod-lite", "registry.example:5000/waypoint:latest"},
		{"weft/istiod-lite:v1@sha256:abcd", "weft/waypoint:v1"},
		{"weft/istiod-lite@sha256:abcd", "weft/waypoint:" + defTag},
	} {
		t.Run(tc.own, func(t *testing.T) {
			got, err := ImageFor(tc.own)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ImageFor(%q) = %q, want %q", tc.own, got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", ":tag", "weft/:x"} {
		if got, err := ImageFor(bad); err == nil {
			t.Errorf("ImageFor(%q) = %q, want an error", bad, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{XDSAddress: "istiod.weft-system.svc:15012", TrustDomain: "cluster.local"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.CAAddress != c.XDSAddress || c.Image == "" || c.Workers != 2 || c.Log == nil || c.Now == nil {
		t.Errorf("defaults not filled: %+v", c)
	}
	var empty Config
	if err := empty.Validate(); err == nil || !strings.Contains(err.Error(), "xDS address") || !strings.Contains(err.Error(), "trust domain") {
		t.Errorf("Validate of an empty config = %v, want both missing fields named", err)
	}
}

func TestResolveImage(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod-lite-1", Namespace: "weft-system"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery", Image: "registry.example/weft/istiod-lite:v0.3.0"}}},
	}
	kc := kubefake.NewClientset(pod)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"override wins", Config{Image: "mine/wp:1", PodNamespace: "weft-system", PodName: "istiod-lite-1"}, "mine/wp:1"},
		{"from own pod", Config{PodNamespace: "weft-system", PodName: "istiod-lite-1"}, "registry.example/weft/waypoint:v0.3.0"},
		{"pod not found", Config{PodNamespace: "weft-system", PodName: "gone"}, DefaultImage()},
		{"no pod named", Config{}, DefaultImage()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			c.XDSAddress, c.TrustDomain = "x:15012", "cluster.local"
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			c.resolveImage(context.Background(), kc)
			if c.Image != tc.want {
				t.Errorf("image %q, want %q", c.Image, tc.want)
			}
		})
	}
}

// FuzzImageFor: any input either fails or gives "<prefix>waypoint:<tag>"
// with no digest, keeping the input's registry path and tag.
func FuzzImageFor(f *testing.F) {
	for _, s := range []string{"weft/istiod-lite:dev", "r.example:5000/a/b/istiod-lite:v1@sha256:00", "istiod-lite", ":x", "a/:b", "@", "a:b:c", "a/b@c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, own string) {
		got, err := ImageFor(own)
		if err != nil {
			return
		}
		if strings.Contains(got, "@") {
			t.Fatalf("ImageFor(%q) = %q keeps a digest", own, got)
		}
		i := strings.LastIndex(got, "/")
		if !strings.HasPrefix(got[i+1:], ImageRepository+":") {
			t.Fatalf("ImageFor(%q) = %q, want .../%s:<tag>", own, got, ImageRepository)
		}
		if !strings.HasPrefix(own, got[:i+1]) {
			t.Fatalf("ImageFor(%q) = %q changes the registry path", own, got)
		}
	})
}
