package manifests

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Render builds the kustomization in dir (a folder on disk, e.g.
// "manifests" or "manifests/samples") with kustomize's defaults, as
// `kubectl apply -k dir` does, and returns its objects in kustomize's
// output order (namespaces and CRDs first).
func Render(dir string) ([]*unstructured.Unstructured, error) {
	return RenderFS(filesys.MakeFsOnDisk(), dir)
}

// RenderFS is Render over any kustomize file system.
func RenderFS(fs filesys.FileSystem, dir string) ([]*unstructured.Unstructured, error) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out, nil
}
