package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Restart back-off: shorter than a kubelet's 10s..5m so the lab converges
// quickly when components start out of order.
const (
	backoffBase  = time.Second
	backoffMax   = 30 * time.Second
	backoffReset = 2 * time.Minute
)

// termination records how a container instance ended.
type termination struct {
	ExitCode   int32
	Signal     int32
	Reason     string
	Message    string
	StartedAt  time.Time
	FinishedAt time.Time
	ID         string
}

// ctrStatus is a snapshot of one container for status computation.
type ctrStatus struct {
	Name          string
	Image         string
	Init          bool
	Sidecar       bool
	RestartCount  int32
	Running       bool
	StartedAt     time.Time
	ID            string
	WaitingReason string
	WaitingMsg    string
	Current       *termination // set when finished for good (no restart)
	Last          *termination
	Ready         bool
	Started       bool
}

// ctr supervises one container of a pod: it starts the process through
// the shim, restarts it per the pod's restartPolicy with back-off, and
// stops it gracefully.
type ctr struct {
	w    *podWorker
	spec *v1.Container
	init bool

	mu       sync.Mutex
	st       ctrStatus
	proc     *os.Process
	killed   chan struct{} // closed to ask the running instance to stop
	logPath  string
	stopping bool
	done     chan struct{} // closed when supervise returns
}

func newCtr(w *podWorker, spec *v1.Container, init bool) *ctr {
	return &ctr{
		w: w, spec: spec, init: init, done: make(chan struct{}),
		st: ctrStatus{
			Name: spec.Name, Image: spec.Image, Init: init,
			Sidecar:       init && spec.RestartPolicy != nil && *spec.RestartPolicy == v1.ContainerRestartPolicyAlways,
			WaitingReason: "ContainerCreating",
		},
	}
}

func (c *ctr) snapshot() ctrStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	return s
}

func (c *ctr) update(f func(*ctrStatus)) {
	c.mu.Lock()
	f(&c.st)
	c.mu.Unlock()
	c.w.statusChanged()
}

func (c *ctr) fieldPath() string { return containerFieldPath(c.spec, c.init) }

// shouldRestart applies the restart policy to an exit.
func shouldRestart(policy v1.RestartPolicy, sidecar bool, exitCode int32) bool {
	if sidecar {
		return true
	}
	switch policy {
	case v1.RestartPolicyNever:
		return false
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// backoffFor returns the delay before restart number n (n >= 1).
func backoffFor(n int32) time.Duration {
	d := backoffBase
	for i := int32(1); i < n && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// supervise runs the container until it finishes for good or stop is
// called. It returns the final termination (nil when stopped).
func (c *ctr) supervise(ctx context.Context) *termination {
	defer close(c.done)
	policy := c.w.currentPod().Spec.RestartPolicy
	if policy == "" {
		policy = v1.RestartPolicyAlways
	}
	if c.init && !c.st.Sidecar && policy == v1.RestartPolicyAlways {
		policy = v1.RestartPolicyOnFailure // init containers rerun only on failure
	}
	var failures int32
	for {
		if c.isStopping() || ctx.Err() != nil {
			return nil
		}
		t, err := c.runOnce(ctx)
		if err != nil {
			// Could not start: waiting with a reason, retry with back-off.
			failures++
			d := backoffFor(failures)
			if c.sleep(ctx, d) {
				return nil
			}
			continue
		}
		if c.isStopping() || ctx.Err() != nil {
			return nil
		}
		if !shouldRestart(policy, c.st.Sidecar, t.ExitCode) {
			c.update(func(s *ctrStatus) { s.Current = t; s.WaitingReason = "" })
			return t
		}
		if t.FinishedAt.Sub(t.StartedAt) > backoffReset {
			failures = 0
		}
		failures++
		d := backoffFor(failures)
		if failures > 1 {
			c.update(func(s *ctrStatus) {
				s.WaitingReason = "CrashLoopBackOff"
				s.WaitingMsg = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", d, c.spec.Name, c.w.podName())
			})
			c.w.event(c.fieldPath(), v1.EventTypeWarning, "BackOff", "Back-off restarting failed container "+c.spec.Name)
		}
		if c.sleep(ctx, d) {
			return nil
		}
		c.update(func(s *ctrStatus) { s.RestartCount++ })
	}
}

// sleep waits d; it reports true when the container is being stopped.
func (c *ctr) sleep(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	k := c.killed
	if k == nil {
		k = make(chan struct{})
		c.killed = k
	}
	c.mu.Unlock()
	select {
	case <-ctx.Done():
		return true
	case <-k:
		return c.isStopping()
	case <-time.After(d):
		return c.isStopping()
	}
}

func (c *ctr) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

// runOnce starts one instance and waits for it to exit.
func (c *ctr) runOnce(ctx context.Context) (*termination, error) {
	w := c.w
	pod := w.currentPod()
	bin, err := resolveImage(w.k.cfg.Images, c.spec.Image)
	if err != nil {
		c.update(func(s *ctrStatus) { s.WaitingReason, s.WaitingMsg = "ErrImagePull", err.Error() })
		w.event(c.fieldPath(), v1.EventTypeWarning, "Failed", "Failed to pull image \""+c.spec.Image+"\": "+err.Error())
		return nil, err
	}
	spec, err := w.shimSpecFor(ctx, pod, c.spec, bin)
	if err != nil {
		c.update(func(s *ctrStatus) { s.WaitingReason, s.WaitingMsg = "CreateContainerConfigError", err.Error() })
		w.event(c.fieldPath(), v1.EventTypeWarning, "Failed", "Error: "+err.Error())
		return nil, err
	}
	restarts := c.snapshot().RestartCount
	cdir := filepath.Join(w.dir, "containers", c.spec.Name)
	if err := os.MkdirAll(filepath.Join(cdir, "scratch"), 0o755); err != nil {
		return nil, err
	}
	spec.Scratch = filepath.Join(cdir, "scratch")
	specPath := filepath.Join(cdir, "spec.json")
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(w.dir, "logs", c.spec.Name, strconv.Itoa(int(restarts))+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(w.k.cfg.ShimPath, shimCommand, "run", specPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = shimProcAttr()
	err = cmd.Start()
	_ = logf.Close() // the shim holds its own descriptor
	if err != nil {
		c.update(func(s *ctrStatus) { s.WaitingReason, s.WaitingMsg = "RunContainerError", err.Error() })
		w.event(c.fieldPath(), v1.EventTypeWarning, "Failed", "Error: start shim: "+err.Error())
		return nil, err
	}
	started := time.Now()
	id := fmt.Sprintf("lite://%s-%s-%d", pod.UID, c.spec.Name, restarts)
	killed := make(chan struct{})
	c.mu.Lock()
	c.proc, c.logPath, c.killed = cmd.Process, logPath, killed
	c.st.Running, c.st.StartedAt, c.st.ID = true, started, id
	c.st.WaitingReason, c.st.WaitingMsg = "", ""
	c.st.Ready, c.st.Started = false, c.spec.StartupProbe == nil
	stopping := c.stopping
	c.mu.Unlock()
	if stopping { // raced with stop before the process was visible
		_ = cmd.Process.Signal(syscall.SIGKILL) // it may have exited already
	}
	w.statusChanged()
	w.event(c.fieldPath(), v1.EventTypeNormal, "Started", "Started container "+c.spec.Name)

	pctx, cancelProbes := context.WithCancel(ctx)
	probesDone := c.startProbes(pctx, cmd.Process.Pid)
	werr := cmd.Wait()
	cancelProbes()
	probesDone.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the container's leftover children, if any
	t := &termination{StartedAt: started, FinishedAt: time.Now(), ID: id, Reason: "Completed"}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		ws := ee.Sys().(syscall.WaitStatus)
		t.ExitCode = int32(ws.ExitStatus())
		if ws.Signaled() {
			t.Signal = int32(ws.Signal())
			t.ExitCode = 128 + t.Signal
		}
	}
	if t.ExitCode != 0 {
		t.Reason = "Error"
	}
	c.mu.Lock()
	c.proc = nil
	c.st.Running, c.st.Ready, c.st.Last = false, false, t
	c.mu.Unlock()
	w.statusChanged()
	return t, nil
}

// pid returns the running instance's process id, or 0.
func (c *ctr) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid
}

// kill stops the running instance: SIGTERM, then SIGKILL after grace. With
// final set the container is not restarted. It returns when the instance
// has exited (or at once if none runs).
func (c *ctr) kill(grace time.Duration, final bool) {
	c.mu.Lock()
	if final {
		c.stopping = true
	}
	p, k := c.proc, c.killed
	c.mu.Unlock()
	if k != nil && final {
		select {
		case <-k:
		default:
			close(k)
		}
	}
	if p == nil {
		return
	}
	if lc := c.spec.Lifecycle; lc != nil && lc.PreStop != nil {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		if err := c.runHook(ctx, lc.PreStop, p.Pid); err != nil {
			c.w.event(c.fieldPath(), v1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed: "+err.Error())
		}
		cancel()
		grace = max(grace-time.Since(start), 0)
	}
	_ = p.Signal(syscall.SIGTERM) // an exited process is seen by the loop below
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if c.pid() != p.Pid {
			return
		}
		select {
		case <-deadline.C:
			_ = syscall.Kill(-p.Pid, syscall.SIGKILL) // best effort: it may be gone
			_ = p.Signal(syscall.SIGKILL)
		case <-tick.C:
		}
	}
}
