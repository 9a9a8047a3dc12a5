package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Run runs kubelet-lite until ctx ends: it registers and heartbeats the
// Node, runs the pods bound to it, and serves the kubelet API. On return
// every pod's containers are stopped and its sandbox (CNI DEL, netns) and
// state are removed. It must run inside the node's network namespace.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("kubelet config: %w", err)
	}
	if err := platformSupported(); err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load node kubeconfig: %w", err)
	}
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "kubelet-lite/" + cfg.NodeName
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "pods")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
	}
	// Plugins see the node root's /var/run/weft etc., like hostPath pods.
	pluginExec, err := newNodeViewExec(cfg.ShimPath, cfg.RootDir, filepath.Join(cfg.StateDir, "cni-scratch"))
	if err != nil {
		return err
	}
	network := newCNINetwork(cfg.CNIConfDir, cfg.CNIBinDir, filepath.Join(cfg.StateDir, "cni-cache"), pluginExec)
	k := newKubelet(&cfg, client, network, log)
	k.releaseLeftovers(ctx)
	if err := k.setupNetnsView(); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	srv := &apiServer{k: k, log: log.With("component", "kubelet-api")}
	wg.Go(func() {
		if err := srv.serve(runCtx); err != nil {
			cancel(err)
		}
	})
	ready := make(chan struct{})
	agent := &nodeAgent{cfg: &cfg, client: client, log: log, now: time.Now}
	wg.Go(func() { agent.run(runCtx, ready) })
	select {
	case <-ready:
		k.pods.run(runCtx) // returns after every pod is torn down
	case <-runCtx.Done():
	}
	cancel(nil)
	wg.Wait()
	k.events.wait()
	k.removeState()
	if err := context.Cause(runCtx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// releaseLeftovers tears down sandboxes a previous run left behind.
func (k *kubelet) releaseLeftovers(ctx context.Context) {
	dirs, _ := filepath.Glob(filepath.Join(k.cfg.StateDir, "pods", "*"))
	for _, d := range dirs {
		var st sandboxState
		if err := readJSON(filepath.Join(d, "sandbox.json"), &st); err == nil {
			w := &podWorker{k: k, log: k.log.With("pod", st.Namespace+"/"+st.Name), dir: d}
			w.teardownNetwork(ctx, st)
		}
		if err := os.RemoveAll(d); err != nil {
			k.log.Warn("remove leftover pod state", "dir", d, "err", err)
		}
	}
}

// removeState removes the state kubelet-lite created.
func (k *kubelet) removeState() {
	releaseSharedMount(k.netnsView)
	for _, d := range []string{"pods", "netns", "netns-view", "cni-cache"} {
		if err := os.RemoveAll(filepath.Join(k.cfg.StateDir, d)); err != nil {
			k.log.Warn("remove state", "err", err)
		}
	}
}
