package kubelet

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// podNetworker attaches pods to the node's network (the CNI chain).
type podNetworker interface {
	Add(ctx context.Context, p podNetwork) (ips []string, conf []byte, err error)
	Check(ctx context.Context, p podNetwork, conf []byte) error
	Del(ctx context.Context, p podNetwork, conf []byte) error
}

var _ podNetworker = (*cniNetwork)(nil)

// kubelet holds what every pod worker shares.
type kubelet struct {
	cfg    *Config
	client kubernetes.Interface
	log    *slog.Logger
	net    podNetworker
	src    objectSource
	vols   *volumeManager
	events *eventRecorder
	pods   *podManager
	// netnsView is a shared mount holding a second bind mount of every pod
	// netns, named like the primary; hostPath /var/run/netns maps to it.
	netnsView string

	apiMu      sync.Mutex
	apiHost    string
	apiPort    int32
	apiFetched time.Time
}

func newKubelet(cfg *Config, client kubernetes.Interface, net podNetworker, log *slog.Logger) *kubelet {
	src := &apiObjects{client: client}
	k := &kubelet{
		cfg: cfg, client: client, log: log, net: net, src: src,
		vols:   &volumeManager{rootDir: cfg.RootDir, netnsDir: filepath.Join(cfg.StateDir, "netns-view"), client: client, src: src, now: time.Now},
		events: &eventRecorder{client: client, node: cfg.NodeName, log: log},
	}
	k.netnsView = k.vols.netnsDir
	k.pods = newPodManager(k)
	return k
}

// apiService returns the "kubernetes" Service address for pod env vars,
// cached for a minute.
func (k *kubelet) apiService(ctx context.Context) (string, int32) {
	k.apiMu.Lock()
	defer k.apiMu.Unlock()
	if k.apiHost != "" && time.Since(k.apiFetched) < time.Minute {
		return k.apiHost, k.apiPort
	}
	svc, err := k.client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		k.log.Warn("get kubernetes service", "err", err)
		return k.apiHost, k.apiPort
	}
	k.apiHost, k.apiFetched = svc.Spec.ClusterIP, time.Now()
	k.apiPort = 443
	for _, p := range svc.Spec.Ports {
		if p.Name == "https" || len(svc.Spec.Ports) == 1 {
			k.apiPort = p.Port
		}
	}
	return k.apiHost, k.apiPort
}

// apiObjects reads ConfigMaps and Secrets from the API server (the Node
// authorizer lets a node read those its pods reference).
type apiObjects struct{ client kubernetes.Interface }

var _ objectSource = (*apiObjects)(nil)

func (a *apiObjects) ConfigMap(ctx context.Context, ns, name string) (*v1.ConfigMap, error) {
	return a.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

func (a *apiObjects) Secret(ctx context.Context, ns, name string) (*v1.Secret, error) {
	return a.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}
