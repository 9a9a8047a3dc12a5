//go:build e2e

package mesh_test

import (
	"fmt"
	"os"
	"path/filepath"
)

// The lab runs CNI plugins as its kubelet does, in the host's mount
// namespace, while hostPath volumes map into each node's own root. Two
// things the manifests take for granted on a real node therefore differ:
// the weft-cni-agent image has no weft-cni binary in the lab, and the
// plugin's view of /var/run/weft is the node root's. labOverlay is a
// kustomization on top of manifests/ that changes only these: the
// install container copies the plugin from a hostPath the test fills, and
// writes the agent socket, enrollment file and plugin log into the
// conflist as paths under the node's root ($(NODE_NAME) is expanded by the kubelet).
// Everything else is applied as a user applies it.
const labOverlay = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- %[1]s
patches:
- target: {kind: DaemonSet, name: weft-cni-agent}
  patch: |
    - op: replace
      path: /spec/template/spec/initContainers/0/args
      value:
      - install
      - --plugin-binary=/opt/weft-plugin/weft-cni
      - --cni-bin-dir=/host/opt/cni/bin
      - --cni-conf-dir=/host/etc/cni/net.d
      - --agent-socket=%[2]s/$(NODE_NAME)/root/var/run/weft/cni-agent.sock
      - --enrollment-file=%[2]s/$(NODE_NAME)/root/var/run/weft/enrollment.json
      - --plugin-log-file=%[2]s/$(NODE_NAME)/root/var/log/weft-cni.log
    - op: add
      path: /spec/template/spec/initContainers/0/env
      value:
      - name: NODE_NAME
        valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - op: add
      path: /spec/template/spec/initContainers/0/volumeMounts/-
      value: {name: weft-plugin, mountPath: /opt/weft-plugin, readOnly: true}
    - op: add
      path: /spec/template/spec/volumes/-
      value: {name: weft-plugin, hostPath: {path: /opt/weft-plugin, type: Directory}}
`

// writeLabOverlay puts the plugin into every node's root and writes the
// overlay; it returns the overlay's directory.
func (e *meshEnv) writeLabOverlay(plugin string) (string, error) {
	b, err := os.ReadFile(plugin)
	if err != nil {
		return "", err
	}
	nodesDir := filepath.Join(e.c.Dir, "nodes")
	for _, n := range e.c.Plan.Nodes {
		dir := filepath.Join(nodesDir, n.Name, "root", "opt", "weft-plugin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, "weft-cni"), b, 0o755); err != nil {
			return "", err
		}
	}
	// kustomize takes resources by relative path only.
	dir := e.overlayDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(dir, filepath.Join(e.root, "manifests"))
	if err != nil {
		return "", err
	}
	y := fmt.Sprintf(labOverlay, rel, nodesDir)
	return dir, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(y), 0o644)
}

func (e *meshEnv) overlayDir() string {
	return filepath.Join(e.root, "_output", "mesh-e2e", "overlay-"+e.c.Plan.Name)
}
