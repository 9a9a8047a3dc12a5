package bench

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/weftmesh/weft/e2e/lab"
)

const (
	// enrollLimit is how long every pod has to reach mTLS after the label.
	enrollLimit = 3 * time.Minute
	// probeWorkers probe pods in parallel during one sweep.
	probeWorkers = 8
)

// enrollPod is one pod of the enrolment scenario.
type enrollPod struct {
	name  string
	probe *nsClient // connections made in the pod's network namespace
	// enrolled and mtls are the times since the label at which the pod was
	// seen redirected and its traffic seen in mTLS (0: not yet).
	enrolled, mtls time.Duration
	probed         bool // a probe succeeded since the pod was redirected
	reached        bool // a probe succeeded (before the label: in plaintext)
}

// cpEnrollScenario deploys EnrollPods running pods in a namespace not
// enrolled, spread over the nodes, labels the namespace into the mesh with
// kubectl, and times until every pod is redirected (the node agent's
// annotation) and a new connection from each pod to the mesh's server is
// counted by its ztunnel as mutual TLS (HBONE): istio_tcp_connections_opened_total
// with reporter="source", connection_security_policy="mutual_tls" and the
// pod as source_workload.
func (b *bench) cpEnrollScenario(ctx context.Context) error {
	n := b.cfg.EnrollPods
	nodes := b.c.Plan.Nodes
	if err := b.ensureNamespace(ctx, nsEnroll, nil); err != nil {
		return err
	}
	pods := make([]*enrollPod, n)
	for i := range n {
		name := fmt.Sprintf("e-%03d", i)
		pods[i] = &enrollPod{name: name}
		if _, err := b.cs.CoreV1().Pods(nsEnroll).Create(ctx, sleeperPod(nsEnroll, name, nodes[i%len(nodes)].Name, nil), metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	if err := b.waitAllReady(ctx, nsEnroll, n, 5*time.Minute); err != nil {
		return err
	}
	defer func() {
		for _, p := range pods {
			if p.probe != nil {
				_ = p.probe.Close() // a handle and idle connections only
			}
		}
	}()
	for _, p := range pods {
		path, err := lab.PodNetns(ctx, b.cs, b.c.Plan.Name, nsEnroll, p.name)
		if err != nil {
			return err
		}
		if p.probe, err = newNSClient(path, false, 2*time.Second); err != nil {
			return err
		}
	}
	zts, err := b.ztunnelMetricClients()
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range zts {
			_ = c.Close() // a handle and idle connections only
		}
	}()
	target := "http://" + b.topo.paths[pathMesh].HTTP + "/healthz"
	// Before: every pod reaches the server (in plaintext, not enrolled);
	// a busy machine gets a few tries.
	for try := 0; ; try++ {
		failed := b.probeAll(ctx, pods, target, func(p *enrollPod) bool { return !p.reached })
		if failed == 0 {
			break
		}
		if try == 10 {
			return fmt.Errorf("%d of %d pods cannot reach %s before enrolment", failed, n, target)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return err
		}
	}
	before, err := scrapeMTLS(ctx, zts, nsEnroll)
	if err != nil {
		return err
	}

	start := time.Now()
	if out, err := b.c.Kubectl(ctx, nil, "label", "namespace", nsEnroll, ambientLabel+"=ambient"); err != nil {
		return fmt.Errorf("kubectl label namespace: %w: %s", err, out)
	}
	var sweeps []float64
	done := 0
	for done < n && time.Since(start) < enrollLimit && ctx.Err() == nil {
		sweep := time.Now()
		list, err := b.cs.CoreV1().Pods(nsEnroll).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list %s: %w", nsEnroll, err)
		}
		redirected := map[string]bool{}
		for _, p := range list.Items {
			redirected[p.Name] = p.Annotations[redirectionAnnot] == "enabled"
		}
		for _, p := range pods {
			if p.enrolled == 0 && redirected[p.name] {
				p.enrolled = time.Since(start)
			}
		}
		b.probeAll(ctx, pods, target, func(p *enrollPod) bool { return p.enrolled > 0 && p.mtls == 0 })
		now, err := scrapeMTLS(ctx, zts, nsEnroll)
		if err != nil {
			return err
		}
		at := time.Since(start)
		done = 0
		for _, p := range pods {
			if p.mtls == 0 && p.probed && now[p.name] > before[p.name] {
				p.mtls = at
			}
			if p.mtls > 0 {
				done++
			}
		}
		sweeps = append(sweeps, float64(time.Since(sweep))/float64(time.Millisecond))
	}
	var enrolledS, mtlsS []float64
	for _, p := range pods {
		enrolledS = append(enrolledS, secsOrNaN(p.enrolled))
		mtlsS = append(mtlsS, secsOrNaN(p.mtls))
	}
	kase := fmt.Sprintf("%d running pods over %d nodes, `kubectl label ns`", n, len(nodes))
	method := fmt.Sprintf("each sweep lists the pods (redirected = the node agent's annotation), opens a new connection from every redirected pod not yet confirmed to the mesh's server, then reads both ztunnels' metrics: a pod is in mTLS once its ztunnel counted an HBONE connection from it (reporter=source, mutual_tls); %d sweeps of a median %.0f ms, the resolution", len(sweeps), median(sweeps))
	complete := fmt.Sprintf("%d of %d pods in mTLS within %s", done, n, enrollLimit)
	none := "no in-run baseline (nothing else enrols running pods here) and no peer figure documented"
	total := func(metric string, vs []float64) {
		v := []float64{math.NaN()}
		if len(finite(vs)) == len(vs) {
			v = []float64{quantile(vs, 1)}
		}
		r := newRow("control-plane", kase, metric, "s", "lower", noBaseline, nil, "weft", v)
		r.Note = fmt.Sprintf("one run, no spread; %s; %s; %s", complete, none, method)
		b.rep.Rows = append(b.rep.Rows, r)
	}
	total("label to every pod redirected", enrolledS)
	total("label to every pod's traffic in mTLS", mtlsS)
	for _, q := range quantiles[:3] {
		r := distRow("control-plane", kase, "label to a pod's traffic in mTLS, per pod "+q.name, "s", noBaseline, nil, "weft", mtlsS, q.q)
		r.Note = fmt.Sprintf("over the pods (spread over %d blocks of pods in creation order, alternating nodes); %s; %s", distBlocks, complete, none)
		b.rep.Rows = append(b.rep.Rows, r)
	}
	if done < n {
		b.failure("label to mTLS", fmt.Errorf("%s", complete))
	}
	return nil
}

func secsOrNaN(d time.Duration) float64 {
	if d == 0 {
		return math.NaN()
	}
	return d.Seconds()
}

// probeAll opens one new connection from each pod that want selects to
// target (probeWorkers at a time), marks the ones answered, and returns how
// many failed.
func (b *bench) probeAll(ctx context.Context, pods []*enrollPod, target string, want func(*enrollPod) bool) int {
	work := make(chan *enrollPod)
	var mu sync.Mutex
	failed := 0
	var wg sync.WaitGroup
	for range probeWorkers {
		wg.Add(1)
		go func() { // owned by probeAll: waited for below
			defer wg.Done()
			for p := range work {
				_, err := p.probe.get(ctx, target)
				mu.Lock()
				switch {
				case err != nil:
					failed++
				case p.enrolled > 0:
					p.probed, p.reached = true, true
				default:
					p.reached = true
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range pods {
		if want(p) {
			work <- p
		}
	}
	close(work)
	wg.Wait()
	return failed
}

// ztunnelMetricClients opens every ztunnel's network namespace.
func (b *bench) ztunnelMetricClients() ([]*nsClient, error) {
	ps, err := b.procs(roleZtunnel)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no ztunnel process found")
	}
	var out []*nsClient
	for _, p := range ps {
		c, err := newNSClient(fmt.Sprintf("/proc/%d/ns/net", p.PID), true, 5*time.Second)
		if err != nil {
			for _, o := range out {
				_ = o.Close()
			}
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// scrapeMTLS sums, over the ztunnels, the HBONE connections opened by each
// source workload of ns.
func scrapeMTLS(ctx context.Context, zts []*nsClient, ns string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, c := range zts {
		page, err := c.get(ctx, "http://"+ztunnelMetricsAt+"/metrics")
		if err != nil {
			return nil, fmt.Errorf("ztunnel metrics: %w", err)
		}
		for w, v := range mtlsSources(page, ns) {
			out[w] += v
		}
	}
	return out, nil
}

// waitAllReady waits until ns has n Ready pods.
func (b *bench) waitAllReady(ctx context.Context, ns string, n int, limit time.Duration) error {
	ready := 0
	err := wait.PollUntilContextTimeout(ctx, time.Second, limit, true, func(ctx context.Context) (bool, error) {
		l, err := b.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		ready = 0
		for i := range l.Items {
			if podReady(&l.Items[i]) {
				ready++
			}
		}
		return ready >= n, nil
	})
	if err != nil {
		return fmt.Errorf("%d of %d pods of %s ready: %w", ready, n, ns, err)
	}
	return nil
}
