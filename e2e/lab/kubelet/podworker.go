package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// imageBinDir is where the project's images keep their binaries.
const imageBinDir = "/usr/local/bin"

const (
	resyncInterval   = 30 * time.Second
	retryInterval    = 2 * time.Second
	defaultGrace     = 30 * time.Second
	shutdownMaxGrace = 10 * time.Second
)

// podWorker owns one pod on this node: sandbox, volumes, containers,
// status, and teardown. Its run goroutine is owned by the podManager.
type podWorker struct {
	k   *kubelet
	dir string
	log *slog.Logger

	mu      sync.Mutex
	pod     *v1.Pod
	sandbox *sandboxState
	inits   []*ctr
	ctrs    []*ctr
	vols    podVolumes
	// terminal is set once the pod reached Succeeded or Failed.
	terminal bool
	removed  bool // the pod is gone from the API

	wake     chan struct{} // pod updated or removed
	statusCh chan struct{}
	stop     chan struct{} // closed to terminate the pod
	stopOnce sync.Once
	done     chan struct{} // closed when run returns
}

func newPodWorker(k *kubelet, pod *v1.Pod) *podWorker {
	return &podWorker{
		k:        k,
		pod:      pod,
		dir:      filepath.Join(k.cfg.StateDir, "pods", string(pod.UID)),
		log:      k.log.With("pod", pod.Namespace+"/"+pod.Name),
		wake:     make(chan struct{}, 1),
		statusCh: make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

func (w *podWorker) currentPod() *v1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod
}

func (w *podWorker) podName() string {
	p := w.currentPod()
	return p.Namespace + "/" + p.Name
}

func (w *podWorker) event(fieldPath, typ, reason, msg string) {
	w.k.events.record(w.currentPod(), fieldPath, typ, reason, msg)
}

func (w *podWorker) statusChanged() {
	select {
	case w.statusCh <- struct{}{}:
	default:
	}
}

// update delivers a newer pod object; a deletion timestamp terminates.
func (w *podWorker) update(pod *v1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		w.terminate()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// markRemoved records that the pod is gone from the API and terminates.
func (w *podWorker) markRemoved() {
	w.mu.Lock()
	w.removed = true
	w.mu.Unlock()
	w.terminate()
}

func (w *podWorker) terminate() { w.stopOnce.Do(func() { close(w.stop) }) }

func (w *podWorker) stopping() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// wait sleeps d; it reports false when the pod is terminating.
func (w *podWorker) wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-w.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// gracePeriod is how long containers get between SIGTERM and SIGKILL.
func (w *podWorker) gracePeriod(ctx context.Context) time.Duration {
	pod := w.currentPod()
	g := defaultGrace
	if pod.DeletionGracePeriodSeconds != nil {
		g = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		g = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if ctx.Err() != nil { // kubelet shutting down
		g = min(g, shutdownMaxGrace)
	}
	return max(g, 100*time.Millisecond)
}

// run drives the pod from sandbox to termination.
func (w *podWorker) run(ctx context.Context) {
	defer close(w.done)
	var statusWG sync.WaitGroup
	statusCtx, stopStatus := context.WithCancel(context.WithoutCancel(ctx))
	statusWG.Go(func() { w.statusLoop(statusCtx) })
	defer func() {
		stopStatus()
		statusWG.Wait()
	}()
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		w.log.Error("create pod dir", "err", err)
		return
	}
	pod := w.currentPod()
	w.mu.Lock()
	for i := range pod.Spec.InitContainers {
		w.inits = append(w.inits, newCtr(w, &pod.Spec.InitContainers[i], true))
	}
	for i := range pod.Spec.Containers {
		w.ctrs = append(w.ctrs, newCtr(w, &pod.Spec.Containers[i], false))
	}
	w.mu.Unlock()
	w.statusChanged()

	var wg sync.WaitGroup
	defer w.shutdown(ctx, &wg)
	for !w.stopping() {
		err := w.setupSandbox(ctx)
		if err == nil {
			break
		}
		w.event("", v1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: "+err.Error())
		if !w.wait(ctx, retryInterval) {
			return
		}
	}
	if !w.syncVolumes(ctx) {
		return
	}
	for _, c := range w.inits {
		if c.st.Sidecar {
			// A sidecar runs for the pod's life; the next init container
			// waits until it has started.
			wg.Go(func() { c.supervise(ctx) })
			for st := c.snapshot(); !st.Running || !st.Started; st = c.snapshot() {
				if !w.wait(ctx, 100*time.Millisecond) {
					return
				}
			}
			continue
		}
		t := c.supervise(ctx)
		if t == nil {
			return // terminated while initialising
		}
		if t.ExitCode != 0 { // restartPolicy Never: the pod fails
			w.finish()
			return
		}
	}
	w.statusChanged()
	finished := make(chan struct{})
	var mainWG sync.WaitGroup
	for _, c := range w.ctrs {
		mainWG.Go(func() { c.supervise(ctx) })
	}
	wg.Go(func() { mainWG.Wait(); close(finished) })
	resync := time.NewTicker(resyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case <-finished:
			w.finish()
			return
		case <-w.wake:
			w.statusChanged()
		case <-resync.C:
			w.syncVolumes(ctx)
			w.checkNetwork(ctx)
		}
	}
}

// finish marks the pod terminal; shutdown then releases its sandbox.
func (w *podWorker) finish() {
	w.mu.Lock()
	w.terminal = true
	w.mu.Unlock()
	w.statusChanged()
}

// syncVolumes materialises or refreshes volumes, retrying until it works
// or the pod terminates. It reports whether the volumes are ready.
func (w *podWorker) syncVolumes(ctx context.Context) bool {
	for {
		w.mu.Lock()
		ips := []string(nil)
		if w.sandbox != nil {
			ips = w.sandbox.IPs
		}
		w.mu.Unlock()
		err := w.k.vols.setup(ctx, w.currentPod(), w.dir, &w.vols, ips, w.k.cfg.NodeIP)
		if err == nil {
			return true
		}
		w.event("", v1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: "+err.Error())
		if !w.wait(ctx, retryInterval) {
			return false
		}
	}
}

func (w *podWorker) checkNetwork(ctx context.Context) {
	w.mu.Lock()
	st := w.sandbox
	w.mu.Unlock()
	if st == nil || st.NetNS == "" || len(st.CNIConf) == 0 {
		return
	}
	if err := w.k.net.Check(ctx, w.podNetwork(st.NetNS), st.CNIConf); err != nil && ctx.Err() == nil {
		w.event("", v1.EventTypeWarning, "NetworkNotReady", "CNI CHECK failed: "+err.Error())
	}
}

// shutdown stops every container (SIGTERM, grace, SIGKILL), releases the
// sandbox, and finalises a deleted pod in the API.
func (w *podWorker) shutdown(ctx context.Context, wg *sync.WaitGroup) {
	grace := w.gracePeriod(ctx)
	var kills sync.WaitGroup
	all := append(append([]*ctr(nil), w.ctrs...), w.inits...)
	for _, c := range all {
		if c.pid() != 0 {
			w.event(c.fieldPath(), v1.EventTypeNormal, "Killing", "Stopping container "+c.spec.Name)
		}
		kills.Go(func() { c.kill(grace, true) })
	}
	kills.Wait()
	wg.Wait()
	bg := context.WithoutCancel(ctx)
	w.mu.Lock()
	st := w.sandbox
	w.mu.Unlock()
	if st != nil {
		w.teardownNetwork(bg, *st)
	} else {
		var saved sandboxState
		if readJSON(filepath.Join(w.dir, "sandbox.json"), &saved) == nil {
			w.teardownNetwork(bg, saved)
		}
	}
	w.mu.Lock()
	w.sandbox = nil
	removed := w.removed
	w.mu.Unlock()
	if ctx.Err() != nil {
		return // kubelet exit: the pod keeps its API state
	}
	w.writeStatus(bg)
	pod := w.currentPod()
	if removed || pod.DeletionTimestamp == nil {
		return
	}
	err := w.k.client.CoreV1().Pods(pod.Namespace).Delete(bg, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		w.log.Warn("finalise pod deletion", "err", err)
	}
}

// cleanup removes the pod's state dir (volumes, logs). Call after run.
func (w *podWorker) cleanup() {
	if err := os.RemoveAll(w.dir); err != nil {
		w.log.Warn("remove pod dir", "err", err)
	}
}

// shimSpecFor builds the shim spec for container c running binary bin.
func (w *podWorker) shimSpecFor(ctx context.Context, pod *v1.Pod, c *v1.Container, bin string) (*shimSpec, error) {
	w.mu.Lock()
	sb := w.sandbox
	w.mu.Unlock()
	if sb == nil {
		return nil, fmt.Errorf("pod sandbox is not ready")
	}
	host, port := w.k.apiService(ctx)
	env, err := buildEnv(ctx, w.k.src, envInput{
		Pod: pod, Container: c, PodIPs: sb.IPs, HostIP: w.k.cfg.NodeIP,
		APIHost: host, APIPort: port, NodeCPU: nodeCPU, NodeMemory: nodeMemory,
	})
	if err != nil {
		return nil, err
	}
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	base := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + hostname}
	if pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks {
		base = append(base, serviceLinkEnv(w.k.namespaceServices(ctx, pod.Namespace))...)
	}
	env = dedupeEnv(append(base, env...))
	argv := append(append([]string(nil), c.Command...), c.Args...)
	// The image's entrypoint is its binary, mounted in imageBinDir.
	imageBin := imageBinDir + "/" + filepath.Base(bin)
	if len(c.Command) == 0 {
		argv = append([]string{imageBin}, c.Args...)
	} else if filepath.Base(c.Command[0]) == filepath.Base(bin) {
		argv[0] = imageBin
	}
	argv = expandArgs(argv, env)
	mounts, err := containerMounts(c, &w.vols)
	if err != nil {
		return nil, err
	}
	spec := &shimSpec{Path: argv[0], Args: argv, Env: env, WorkDir: c.WorkingDir}
	spec.Mounts = append(spec.Mounts, shimMount{Source: bin, Target: imageBinDir + "/" + filepath.Base(bin), ReadOnly: true})
	extra := w.k.cfg.ImageFiles[imageRepository(c.Image)]
	for _, target := range sortedKeys(extra) {
		spec.Mounts = append(spec.Mounts, shimMount{Source: extra[target], Target: target, ReadOnly: true})
	}
	spec.Mounts = append(spec.Mounts, mounts...)
	if !pod.Spec.HostNetwork {
		spec.NetNS = sb.NetNS
		spec.Hostname = hostname
		spec.Mounts = append(spec.Mounts, shimMount{Source: filepath.Join(w.dir, "hosts"), Target: "/etc/hosts"})
	}
	if _, err := os.Stat(filepath.Join(w.dir, "resolv.conf")); err == nil {
		spec.Mounts = append(spec.Mounts, shimMount{Source: filepath.Join(w.dir, "resolv.conf"), Target: "/etc/resolv.conf"})
	}
	return spec, nil
}
