package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
)

var isAlreadyExists = apierrors.IsAlreadyExists

// churnStats counts what the churn driver did.
type churnStats struct {
	created, deleted, skipped, errors atomic.Int64
	firstErr                          atomic.Value // string
}

func (s *churnStats) fail(err error) {
	s.errors.Add(1)
	s.firstErr.CompareAndSwap(nil, err.Error())
}

// churnInFlight bounds the churn driver's API calls in flight, each way;
// a tick that finds them all busy is skipped and counted, so the achieved
// rate is reported rather than silently lowered.
const churnInFlight = 64

// born is a churn pod and when its creation was acknowledged.
type born struct {
	name string
	at   time.Time
}

// churn creates a running pod in nsChurn every 1/rate seconds (bound to
// churnNode, its status set through the API: see createRunning) and
// deletes each (no grace period) life after its creation, until ctx ends. Calls run concurrently (at most churnInFlight each way) so
// that a slow API server does not lower the rate; every goroutine is
// waited for.
func (b *bench) churn(ctx context.Context, cs kubernetes.Interface, rate float64, life time.Duration, st *churnStats) {
	every := time.Duration(float64(time.Second) / rate)
	queue := make(chan born, 1<<16)
	createSem, deleteSem := make(chan struct{}, churnInFlight), make(chan struct{}, churnInFlight)
	var calls, loops sync.WaitGroup
	loops.Add(2)
	go func() { // creator, owned by churn
		defer loops.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case createSem <- struct{}{}:
				calls.Add(1)
				go func() { // one create, owned by churn
					defer calls.Done()
					defer func() { <-createSem }()
					name := fmt.Sprintf("churn-%d", i)
					if err := createRunning(ctx, cs, name, i); err != nil {
						if ctx.Err() == nil {
							st.fail(err)
						}
						return
					}
					st.created.Add(1)
					select {
					case queue <- born{name, time.Now()}:
					default: // the queue is full: the pod stays to the teardown
					}
				}()
			default:
				st.skipped.Add(1)
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { // deleter, owned by churn
		defer loops.Done()
		zero := int64(0)
		for {
			var p born
			select {
			case p = <-queue:
			case <-ctx.Done():
				return
			}
			if sleepCtx(ctx, time.Until(p.at.Add(life))) != nil {
				return
			}
			select {
			case deleteSem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			calls.Add(1)
			go func() { // one delete, owned by churn
				defer calls.Done()
				defer func() { <-deleteSem }()
				err := cs.CoreV1().Pods(nsChurn).Delete(ctx, p.name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
				switch {
				case err == nil:
					st.deleted.Add(1)
				case ctx.Err() != nil:
				default:
					st.fail(err)
				}
			}()
		}
	}()
	loops.Wait()
	calls.Wait()
}

// churnNode is the Node the churn pods are bound to: registered by the
// benchmark, run by no kubelet (its Ready condition and Lease are kept
// fresh by fakeNode), tainted so nothing else lands there. On this 2-core
// lab, real pods at 20/s overloaded the kubelets (a first run managed 4.9
// creates/s, none of the pods got an IP and the load average reached 166),
// so the churn loads the control plane the way BenchmarkScale does: pods
// whose status is set through the API.
const churnNode = "bench-churn-node"

// churnIP is the address of churn pod i: in 198.18.0.0/15 (benchmarking,
// RFC 2544), which no lab uses.
func churnIP(i int) string {
	i %= 1 << 17
	return fmt.Sprintf("198.%d.%d.%d", 18+i>>16, i>>8&0xff, i&0xff)
}

// createRunning creates churn pod name bound to churnNode and sets its
// status to Running and Ready with an IP, as a kubelet would.
func createRunning(ctx context.Context, cs kubernetes.Interface, name string, i int) error {
	p := sleeperPod(nsChurn, name, churnNode, map[string]string{"app": "bench-churn"})
	p.Spec.Tolerations = []corev1.Toleration{{Key: churnTaint, Operator: corev1.TolerationOpExists}}
	created, err := cs.CoreV1().Pods(nsChurn).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	now := metav1.Now()
	ip := churnIP(i)
	created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, StartTime: &now,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}}
	_, err = cs.CoreV1().Pods(nsChurn).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

const churnTaint = "weft.dev/bench-churn"

// fakeNode registers churnNode and keeps its Ready condition and Lease
// fresh every 5 s until ctx ends, so that its pods are neither collected
// as orphans nor marked not Ready. The returned channel closes when the
// heartbeat has stopped.
func fakeNode(ctx context.Context, cs kubernetes.Interface) (<-chan struct{}, error) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: churnNode, Labels: map[string]string{"kubernetes.io/hostname": churnNode}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: churnTaint, Effect: corev1.TaintEffectNoSchedule}}}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		return nil, fmt.Errorf("create node %s: %w", churnNode, err)
	}
	beatOnce := func() error {
		now := metav1.Now()
		n, err := cs.CoreV1().Nodes().Get(ctx, churnNode, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}}
		if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
		name, secs := churnNode, int32(40)
		leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
		spec := coordinationv1.LeaseSpec{HolderIdentity: &name, LeaseDurationSeconds: &secs, RenewTime: &metav1.MicroTime{Time: now.Time}}
		old, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: corev1.NamespaceNodeLease}, Spec: spec}, metav1.CreateOptions{})
			return err
		} else if err != nil {
			return err
		}
		old.Spec = spec
		_, err = leases.Update(ctx, old, metav1.UpdateOptions{})
		return err
	}
	// The node controller updates a new node too: retry on a conflict.
	beat := func() error { return retry.RetryOnConflict(retry.DefaultRetry, beatOnce) }
	if err := beat(); err != nil {
		return nil, fmt.Errorf("fake node %s: %w", churnNode, err)
	}
	done := make(chan struct{})
	go func() { // owned by the caller through done
		defer close(done)
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = beat() // a missed beat is caught up 5 s later; 40 s of grace
			}
		}
	}()
	return done, nil
}

// churnClient is a clientset of its own for the churn driver, with a rate
// limit well above the churn's (the shared one allows 50 calls/s).
func (b *bench) churnClient() (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", b.c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("churn client config: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	return kubernetes.NewForConfig(cfg)
}

// cpChurnScenario measures, while pods are created and deleted at
// ChurnRate per second in an enrolled namespace, the pod-change→every
// ztunnel's ACK latency (as at rest) and istiod-lite's CPU and memory,
// against the same figures at rest and idle.
func (b *bench) cpChurnScenario(ctx context.Context) error {
	p, err := b.getProber(ctx)
	if err != nil {
		return err
	}
	cs, err := b.churnClient()
	if err != nil {
		return err
	}
	if err := b.ensureNamespace(ctx, nsChurn, map[string]string{ambientLabel: "ambient"}); err != nil {
		return err
	}
	hctx, stopBeat := context.WithCancel(ctx)
	beating, err := fakeNode(hctx, cs)
	if err != nil {
		stopBeat()
		return err
	}
	defer func() {
		stopBeat()
		<-beating
	}()
	idle := b.cfg.ChurnIdle
	ictx, cancel := context.WithTimeout(ctx, idle)
	idleCPU, idleRSS := b.sampleIstiod(ictx, nil)
	cancel()

	var st churnStats
	cctx, stopChurn := context.WithCancel(ctx)
	churnDone := make(chan struct{})
	go func() { // owned by cpChurnScenario: waited for below
		defer close(churnDone)
		b.churn(cctx, cs, b.cfg.ChurnRate, b.cfg.ChurnLife, &st)
	}()
	defer func() {
		stopChurn()
		<-churnDone
	}()
	// Measure once deletes have started too: the steady state.
	if err := sleepCtx(ctx, b.cfg.ChurnLife+time.Second); err != nil {
		return err
	}
	created0, deleted0 := st.created.Load(), st.deleted.Load()
	start := time.Now()
	stop := make(chan struct{})
	var cpu, rss []float64
	sampled := make(chan struct{})
	go func() { // owned by cpChurnScenario: waited for below
		defer close(sampled)
		cpu, rss = b.sampleIstiod(ctx, stop)
	}()
	// The window closes after Churn; a change under way then is finished
	// (the churn goes on until it is), the samples stop at the close.
	windowDone := make(chan struct{})
	timer := time.AfterFunc(b.cfg.Churn, func() { close(stop); close(windowDone) })
	defer timer.Stop()
	ms, api := p.run(ctx, 0, windowDone)
	<-sampled
	window := time.Since(start)
	createdPerS := float64(st.created.Load()-created0) / window.Seconds()
	deletedPerS := float64(st.deleted.Load()-deleted0) / window.Seconds()
	stopChurn()
	<-churnDone

	live, _ := b.cs.CoreV1().Pods(nsChurn).List(ctx, metav1.ListOptions{})
	withIP, count := 0, 0
	if live != nil {
		count = len(live.Items)
		for _, pod := range live.Items {
			if pod.Status.PodIP != "" {
				withIP++
			}
		}
	}
	errNote := ""
	if n := st.skipped.Load(); n > 0 {
		errNote += fmt.Sprintf(", %d create ticks skipped with %d creates in flight", n, churnInFlight)
	}
	if n := st.errors.Load(); n > 0 {
		first, _ := st.firstErr.Load().(string)
		errNote += fmt.Sprintf(", %d API errors (first: %s)", n, first)
	}
	churnNote := fmt.Sprintf("churn driver: asked %g creates and deletes/s, achieved %.1f creates/s and %.1f deletes/s over the %.0f s window (after %s of warm-up), each pod living %s in an enrolled namespace, bound to a node no kubelet runs, its status (Running, Ready, an IP) set through the API; at the end %d churn pods existed, %d with an IP%s",
		b.cfg.ChurnRate, createdPerS, deletedPerS, window.Seconds(), b.cfg.ChurnLife+time.Second, b.cfg.ChurnLife, count, withIP, errNote)
	b.rep.Notes = append(b.rep.Notes, churnNote)

	kase := fmt.Sprintf("running mesh, %d ztunnels, %g pods/s created and deleted for %.0f s", p.ztunnels, b.cfg.ChurnRate, window.Seconds())
	baseName := "at rest"
	base := b.restProp
	if base == nil {
		baseName = "at rest (not run)"
	}
	for _, q := range quantiles {
		r := distRow("control-plane", kase, "pod change to every ztunnel's ACK, "+q.name, "ms", baseName, base, "under churn", ms, q.q)
		r.Note = fmt.Sprintf("%d changes timed during the churn beside %d at rest in this run (same method; a change under way when the window closed was finished); %s; %s", len(finite(ms)), len(finite(base)), apiPart(api), p.resolution())
		b.rep.Rows = append(b.rep.Rows, r)
	}
	r := newRow("control-plane", kase, "istiod-lite CPU, all replicas", "vCPU", "lower", "idle", idleCPU, "under churn", cpu)
	r.Note = fmt.Sprintf("per-second samples (%d idle over %s, %d under churn; the ACK observer's polls included under churn); %s", len(idleCPU), idle, len(cpu), shortChurn(createdPerS, deletedPerS))
	b.rep.Rows = append(b.rep.Rows, r)
	r = newRow("control-plane", kase, "istiod-lite resident memory per replica", "MiB", "lower", "idle", idleRSS, "under churn", rss)
	r.Note = "VmRSS sampled every second; " + shortChurn(createdPerS, deletedPerS)
	b.rep.Rows = append(b.rep.Rows, r)
	return nil
}

func shortChurn(c, d float64) string {
	return fmt.Sprintf("achieved %.1f creates/s, %.1f deletes/s", c, d)
}
