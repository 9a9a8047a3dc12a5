package kubelet

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const defaultTokenSeconds = 3600

// volumeManager materialises a pod's volumes as host directories under the
// pod's state dir (hostPath volumes map into the node's RootDir) and keeps
// ConfigMap, Secret, downward-API and token contents fresh.
type volumeManager struct {
	rootDir  string
	netnsDir string
	client   kubernetes.Interface
	src      objectSource
	now      func() time.Time
}

// podVolumes is the materialised state of one pod's volumes.
type podVolumes struct {
	mu     sync.Mutex
	paths  map[string]string    // volume name -> host path
	tokens map[string]time.Time // token file -> refresh after
}

// hostPathFor maps a hostPath to the node's root. /proc, /sys and /dev
// are the real ones; /var/run/netns (and /run/netns) is the directory that
// holds the node's pod network namespaces, netnsDir.
func hostPathFor(rootDir, netnsDir, p string) string {
	p = filepath.Clean("/" + p)
	for _, real := range []string{"/proc", "/sys", "/dev"} {
		if p == real || strings.HasPrefix(p, real+"/") {
			return p
		}
	}
	for _, ns := range []string{"/var/run/netns", "/run/netns"} {
		if rest, ok := strings.CutPrefix(p, ns); ok && (rest == "" || rest[0] == '/') && netnsDir != "" {
			return filepath.Join(netnsDir, rest)
		}
	}
	return filepath.Join(rootDir, p)
}

// setup creates every volume of pod under dir and fills it. Calling it
// again refreshes contents (the periodic resync).
func (vm *volumeManager) setup(ctx context.Context, pod *v1.Pod, dir string, pv *podVolumes, podIPs []string, hostIP string) error {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.paths == nil {
		pv.paths, pv.tokens = map[string]string{}, map[string]time.Time{}
	}
	for _, vol := range pod.Spec.Volumes {
		p, err := vm.setupOne(ctx, pod, dir, pv, vol, podIPs, hostIP)
		if err != nil {
			return fmt.Errorf("volume %q: %w", vol.Name, err)
		}
		pv.paths[vol.Name] = p
	}
	return nil
}

func (vm *volumeManager) setupOne(ctx context.Context, pod *v1.Pod, dir string, pv *podVolumes, vol v1.Volume, podIPs []string, hostIP string) (string, error) {
	vdir := filepath.Join(dir, "volumes", vol.Name)
	s := vol.VolumeSource
	switch {
	case s.HostPath != nil:
		return setupHostPath(hostPathFor(vm.rootDir, vm.netnsDir, s.HostPath.Path), s.HostPath.Type)
	case s.EmptyDir != nil:
		return vdir, os.MkdirAll(vdir, 0o777)
	case s.ConfigMap != nil:
		files, err := vm.configMapFiles(ctx, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, s.ConfigMap.Optional, s.ConfigMap.DefaultMode)
		if err != nil {
			return "", err
		}
		return vdir, writeFiles(vdir, files)
	case s.Secret != nil:
		files, err := vm.secretFiles(ctx, pod.Namespace, s.Secret.SecretName, s.Secret.Items, s.Secret.Optional, s.Secret.DefaultMode)
		if err != nil {
			return "", err
		}
		return vdir, writeFiles(vdir, files)
	case s.DownwardAPI != nil:
		files, err := downwardFiles(pod, s.DownwardAPI.Items, s.DownwardAPI.DefaultMode, podIPs, hostIP)
		if err != nil {
			return "", err
		}
		return vdir, writeFiles(vdir, files)
	case s.Projected != nil:
		files := map[string]fileContent{}
		for _, ps := range s.Projected.Sources {
			var more map[string]fileContent
			var err error
			switch {
			case ps.ServiceAccountToken != nil:
				more, err = vm.tokenFile(ctx, pod, pv, vdir, ps.ServiceAccountToken, s.Projected.DefaultMode)
			case ps.ConfigMap != nil:
				more, err = vm.configMapFiles(ctx, pod.Namespace, ps.ConfigMap.Name, ps.ConfigMap.Items, ps.ConfigMap.Optional, s.Projected.DefaultMode)
			case ps.Secret != nil:
				more, err = vm.secretFiles(ctx, pod.Namespace, ps.Secret.Name, ps.Secret.Items, ps.Secret.Optional, s.Projected.DefaultMode)
			case ps.DownwardAPI != nil:
				more, err = downwardFiles(pod, ps.DownwardAPI.Items, s.Projected.DefaultMode, podIPs, hostIP)
			}
			if err != nil {
				return "", err
			}
			for k, v := range more {
				files[k] = v
			}
		}
		return vdir, writeFiles(vdir, files)
	}
	return "", fmt.Errorf("unsupported volume type (the lab supports hostPath, emptyDir, configMap, secret, downwardAPI, projected)")
}

func setupHostPath(p string, t *v1.HostPathType) (string, error) {
	typ := v1.HostPathUnset
	if t != nil {
		typ = *t
	}
	st, err := os.Stat(p)
	switch typ {
	case v1.HostPathUnset, v1.HostPathDirectoryOrCreate:
		if err != nil {
			return p, os.MkdirAll(p, 0o755)
		}
	case v1.HostPathFileOrCreate:
		if err != nil {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", err
			}
			return p, f.Close()
		}
	case v1.HostPathDirectory:
		if err != nil || !st.IsDir() {
			return "", fmt.Errorf("hostPath %s is not a directory", p)
		}
	default:
		if err != nil {
			return "", fmt.Errorf("hostPath %s does not exist", p)
		}
	}
	return p, nil
}

// fileContent is one file of a volume.
type fileContent struct {
	data []byte
	mode os.FileMode
}

func fileMode(item, def *int32) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item)
	case def != nil:
		return os.FileMode(*def)
	}
	return 0o644
}

func keyFiles(data map[string][]byte, items []v1.KeyToPath, def *int32) (map[string]fileContent, error) {
	out := map[string]fileContent{}
	if len(items) == 0 {
		for k, v := range data {
			out[k] = fileContent{v, fileMode(nil, def)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return nil, fmt.Errorf("no key %q", it.Key)
		}
		out[it.Path] = fileContent{v, fileMode(it.Mode, def)}
	}
	return out, nil
}

func (vm *volumeManager) configMapFiles(ctx context.Context, ns, name string, items []v1.KeyToPath, optional *bool, def *int32) (map[string]fileContent, error) {
	cm, err := vm.src.ConfigMap(ctx, ns, name)
	if err != nil {
		if isOptional(optional) {
			return nil, nil
		}
		return nil, fmt.Errorf("configmap %s: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles(data, items, def)
}

func (vm *volumeManager) secretFiles(ctx context.Context, ns, name string, items []v1.KeyToPath, optional *bool, def *int32) (map[string]fileContent, error) {
	s, err := vm.src.Secret(ctx, ns, name)
	if err != nil {
		if isOptional(optional) {
			return nil, nil
		}
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return keyFiles(s.Data, items, def)
}

func downwardFiles(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, def *int32, podIPs []string, hostIP string) (map[string]fileContent, error) {
	out := map[string]fileContent{}
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = podFieldValue(pod, it.FieldRef.FieldPath, podIPs, hostIP)
		case it.ResourceFieldRef != nil:
			v, err = resourceFieldValue(envInput{Pod: pod, NodeCPU: nodeCPU, NodeMemory: nodeMemory}, it.ResourceFieldRef)
		}
		if err != nil {
			return nil, err
		}
		out[it.Path] = fileContent{[]byte(v), fileMode(it.Mode, def)}
	}
	return out, nil
}

// tokenFile requests (or reuses until 80% of its lifetime) a bound
// service-account token for pod through TokenRequest.
func (vm *volumeManager) tokenFile(ctx context.Context, pod *v1.Pod, pv *podVolumes, vdir string, src *v1.ServiceAccountTokenProjection, def *int32) (map[string]fileContent, error) {
	key := filepath.Join(vdir, src.Path)
	if after, ok := pv.tokens[key]; ok && vm.now().Before(after) {
		b, err := os.ReadFile(key)
		if err == nil {
			return map[string]fileContent{src.Path: {b, fileMode(nil, def)}}, nil
		}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	secs := int64(defaultTokenSeconds)
	if src.ExpirationSeconds != nil {
		secs = *src.ExpirationSeconds
	}
	tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
		ExpirationSeconds: ptr.To(secs),
		BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		tr.Spec.Audiences = []string{src.Audience}
	}
	res, err := vm.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("request token for service account %s: %w", sa, err)
	}
	now := vm.now()
	life := res.Status.ExpirationTimestamp.Sub(now)
	if life <= 0 {
		life = time.Duration(secs) * time.Second
	}
	pv.tokens[key] = now.Add(life * 8 / 10)
	return map[string]fileContent{src.Path: {[]byte(res.Status.Token), fileMode(nil, def)}}, nil
}

// writeFiles writes files under dir, replacing changed ones atomically so
// that readers never see a partial file.
func writeFiles(dir string, files map[string]fileContent) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	clean := make(map[string]fileContent, len(files))
	for rel, fc := range files {
		clean[strings.TrimPrefix(filepath.Clean("/"+rel), "/")] = fc
	}
	files = clean
	for rel, fc := range files {
		p := filepath.Join(dir, rel)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, fc.data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp := filepath.Join(filepath.Dir(p), ".tmp-"+filepath.Base(p))
		if err := os.WriteFile(tmp, fc.data, fc.mode); err != nil {
			return err
		}
		if err := os.Chmod(tmp, fc.mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	// Drop files whose keys are gone, as the kubelet's atomic writer does.
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if _, ok := files[rel]; !ok {
			return os.Remove(p)
		}
		return nil
	})
}

// containerMounts returns the shim mounts for c's volumeMounts.
func containerMounts(c *v1.Container, pv *podVolumes) ([]shimMount, error) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	var out []shimMount
	for _, vm := range c.VolumeMounts {
		src, ok := pv.paths[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: no such volume", vm.Name)
		}
		if vm.SubPath != "" {
			src = filepath.Join(src, filepath.Clean("/"+vm.SubPath))
			if _, err := os.Stat(src); err != nil {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, fmt.Errorf("subPath %s: %w", vm.SubPath, err)
				}
			}
		}
		out = append(out, shimMount{Source: src, Target: vm.MountPath, ReadOnly: vm.ReadOnly})
	}
	return out, nil
}
