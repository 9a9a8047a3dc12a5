package bench

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The control-plane scenarios' namespaces: the propagation probes' (not
// enrolled: every workload reaches every ztunnel either way), the churn
// driver's and the enrolment scenario's.
const (
	nsCP     = "bench-cp"
	nsChurn  = "bench-churn"
	nsEnroll = "bench-enroll"

	// ackPoll is the interval between two reads of istiod-lite's
	// /debug/clients while a change is on its way.
	ackPoll = 5 * time.Millisecond
	// changeGap separates two timed changes, so that istiod-lite's
	// debounce (10 ms, at most 100 ms) never merges them.
	changeGap = 150 * time.Millisecond
	// changeLimit is how long one change may take to reach every ztunnel.
	changeLimit = 30 * time.Second

	// noBaseline names the baseline side of a row that has none in-run.
	noBaseline = "none in-run"
)

// prober times pod changes to every ztunnel's ACK: it relabels a running
// pod (its canonical revision, so its workload's content and version
// change) and polls istiod-lite's /debug/clients until every connected
// ztunnel holds a new version of the pod's workload and has acknowledged
// the response that carried it.
type prober struct {
	b        *bench
	obs      *ackObserver
	pods     []string // in nsCP, one on each node
	ztunnels int
	n        int // changes made so far (unique label values)
	// apiMs are the durations of the relabel API calls themselves (ms),
	// in the order of the changes: the API server's part of each figure.
	apiMs []float64
}

// sleeperPod is a small pod running weft-load sleep on node.
func sleeperPod(ns, name, node string, labels map[string]string) *corev1.Pod {
	zero := int64(0)
	no := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName: node, AutomountServiceAccountToken: &no, TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{Name: "sleep", Image: "weft/weft-load:dev", Command: []string{"/usr/local/bin/weft-load"}, Args: []string{"sleep"}}},
		},
	}
}

// ensureNamespace creates ns with labels unless it exists.
func (b *bench) ensureNamespace(ctx context.Context, ns string, labels map[string]string) error {
	_, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return nil
}

// getProber returns the run's prober, deploying its pods the first time.
func (b *bench) getProber(ctx context.Context) (*prober, error) {
	if b.prober != nil {
		return b.prober, nil
	}
	if err := b.ensureNamespace(ctx, nsCP, nil); err != nil {
		return nil, err
	}
	p := &prober{b: b, ztunnels: len(b.c.Plan.Nodes)}
	for i, n := range b.c.Plan.Nodes {
		name := fmt.Sprintf("probe-%d", i)
		if _, err := b.cs.CoreV1().Pods(nsCP).Create(ctx, sleeperPod(nsCP, name, n.Name, map[string]string{"app": "bench-probe"}), metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
			return nil, fmt.Errorf("create probe pod: %w", err)
		}
		p.pods = append(p.pods, name)
	}
	for _, name := range p.pods {
		if err := b.waitPod(ctx, nsCP, name, false); err != nil {
			return nil, err
		}
	}
	obs, err := b.newAckObserver()
	if err != nil {
		return nil, err
	}
	p.obs = obs
	b.prober = p
	return p, nil
}

func (p *prober) Close() error { return p.obs.Close() }

// settled waits until every ztunnel has acknowledged one and the same
// version of name, and returns it.
func (p *prober) settled(ctx context.Context, name string) (string, error) {
	deadline := time.Now().Add(changeLimit)
	for {
		views, err := p.obs.ztunnels(ctx)
		if err != nil {
			return "", err
		}
		versions := map[string]bool{}
		ok := allAcked(views, p.ztunnels, name, func(s ackState) bool {
			versions[s.version] = true
			return s.held
		})
		if ok && len(versions) == 1 {
			for v := range versions {
				return v, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: not acknowledged at one version by %d ztunnels within %s (%d connected)", name, p.ztunnels, changeLimit, len(views))
		}
		if err := sleepCtx(ctx, ackPoll); err != nil {
			return "", err
		}
	}
}

// change relabels the next probe pod and returns the time from just
// before the API call to the poll that found every ztunnel holding, and
// having acknowledged, a new version of its workload (an upper bound: the
// state became true after the previous poll).
func (p *prober) change(ctx context.Context) (time.Duration, error) {
	pod := p.pods[p.n%len(p.pods)]
	p.n++
	name := "Kubernetes//Pod/" + nsCP + "/" + pod
	v0, err := p.settled(ctx, name)
	if err != nil {
		return 0, err
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{"version":"r%d-%d"}}}`, time.Now().UnixNano(), p.n)
	start := time.Now()
	if _, err := p.b.cs.CoreV1().Pods(nsCP).Patch(ctx, pod, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return 0, fmt.Errorf("relabel %s: %w", pod, err)
	}
	p.apiMs = append(p.apiMs, float64(time.Since(start))/float64(time.Millisecond))
	for {
		views, err := p.obs.ztunnels(ctx)
		if err != nil {
			return 0, err
		}
		if allAcked(views, p.ztunnels, name, func(s ackState) bool { return s.held && s.version != v0 }) {
			return time.Since(start), nil
		}
		if time.Since(start) > changeLimit {
			return 0, fmt.Errorf("relabel of %s not acknowledged by every ztunnel within %s", pod, changeLimit)
		}
		if err := sleepCtx(ctx, ackPoll); err != nil {
			return 0, err
		}
	}
}

// run times changes until n are done or, with n 0, until stop closes (a
// change under way is finished), and returns their latencies in ms (NaN
// for a failed one, which is also recorded as a failure) and the API
// calls' durations in ms.
func (p *prober) run(ctx context.Context, n int, stop <-chan struct{}) (out, api []float64) {
	first := len(p.apiMs)
	defer func() { api = p.apiMs[first:] }()
	for i := 0; n == 0 || i < n; i++ {
		select {
		case <-stop:
			return out, nil
		default:
		}
		if ctx.Err() != nil {
			return out, nil
		}
		d, err := p.change(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return out, nil
			}
			p.b.failure("pod change to every ztunnel's ACK", err)
			out = append(out, math.NaN())
			continue
		}
		out = append(out, float64(d)/float64(time.Millisecond))
		select {
		case <-stop:
			return out, nil
		case <-time.After(changeGap):
		case <-ctx.Done():
			return out, nil
		}
	}
	return out, nil
}

// resolution describes the observer's polls so far.
func (p *prober) resolution() string {
	ms := make([]float64, len(p.obs.rtts))
	for i, d := range p.obs.rtts {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	return fmt.Sprintf("ACKs read from istiod-lite's loopback /debug/clients?versions (held versions and responses not yet ACKed per connection), polled every %s; a poll took a median %.1f ms (p99 %.1f), so each figure is an upper bound within about %.0f ms",
		ackPoll, median(ms), quantile(ms, 0.99), float64(ackPoll)/float64(time.Millisecond)+median(ms))
}

// apiPart describes the API calls' share of the figures.
func apiPart(api []float64) string {
	return fmt.Sprintf("the relabel API call itself took a median %.1f ms (p99 %.1f) of each", median(api), quantile(api, 0.99))
}

var quantiles = []struct {
	name string
	q    float64
}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"max", 1}}

// cpPropagationScenario times pod changes to every ztunnel's ACK on the
// running mesh at rest.
func (b *bench) cpPropagationScenario(ctx context.Context) error {
	p, err := b.getProber(ctx)
	if err != nil {
		return err
	}
	before, berr := b.istiodUsage()
	start := time.Now()
	ms, api := p.run(ctx, b.cfg.PropChanges, nil)
	took := time.Since(start)
	b.restProp = ms
	cpuNote := ""
	if after, aerr := b.istiodUsage(); berr == nil && aerr == nil {
		cpuNote = fmt.Sprintf("; istiod-lite's %d replicas used %.3f vCPU together while these were timed (the observer's polls included)", after.Proxies, (after.CPU-before.CPU)/took.Seconds())
	}
	kase := fmt.Sprintf("running mesh, %d ztunnels, at rest", p.ztunnels)
	for _, q := range quantiles {
		r := distRow("control-plane", kase, "pod change to every ztunnel's ACK, "+q.name, "ms", noBaseline, nil, "istiod-lite", ms, q.q)
		r.Note = fmt.Sprintf("%d changes (a running pod relabelled, so its workload changes; alternating a pod on each node, %s apart), timed from just before the API call; value over all changes, spread over %d consecutive blocks; no in-run baseline (BenchmarkScale's synthetic-client rows are the nearest figure); %s; %s%s",
			len(finite(ms)), changeGap, distBlocks, apiPart(api), p.resolution(), cpuNote)
		b.rep.Rows = append(b.rep.Rows, r)
	}
	return nil
}

// istiodUsage reads the lab's istiod-lite replicas' total CPU seconds and
// total resident MiB (Proxies is the number of replicas).
func (b *bench) istiodUsage() (usage, error) {
	ps, err := findProcs(filepath.Join(b.binDir, "istiod-lite"), "")
	if err != nil {
		return usage{}, err
	}
	if len(ps) == 0 {
		return usage{}, fmt.Errorf("no istiod-lite process found")
	}
	return sumUsage(ps)
}

// sampleIstiod reads istiod-lite every second until stop closes or ctx
// ends, and returns the vCPU of each second (all replicas together) and
// the resident MiB per replica at each.
func (b *bench) sampleIstiod(ctx context.Context, stop <-chan struct{}) (cpu, rss []float64) {
	prev, err := b.istiodUsage()
	if err != nil {
		b.failure("istiod-lite usage", err)
		return nil, nil
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return cpu, rss
		case <-ctx.Done():
			return cpu, rss
		case now := <-t.C:
			u, err := b.istiodUsage()
			if err != nil {
				b.failure("istiod-lite usage", err)
				return cpu, rss
			}
			if u.Proxies != prev.Proxies {
				b.failure("istiod-lite usage", fmt.Errorf("%d replicas, then %d", prev.Proxies, u.Proxies))
				return cpu, rss
			}
			cpu = append(cpu, (u.CPU-prev.CPU)/now.Sub(last).Seconds())
			rss = append(rss, u.RSS/float64(u.Proxies))
			prev, last = u, now
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
