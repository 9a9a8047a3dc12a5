package model

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// scaleObjects builds the benchmark population: namespaces, services (each
// selecting a tenth of its namespace's pods... one app label per service),
// and ready, enrolled pods.
func scaleObjects(nss, svcs, pods int) ([]*corev1.Namespace, []*corev1.Service, []*corev1.Pod) {
	var ns []*corev1.Namespace
	for i := range nss {
		ns = append(ns, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%d", i), Labels: map[string]string{LabelDataplaneMode: DataplaneModeAmbient}}})
	}
	var ss []*corev1.Service
	for i := range svcs {
		ss = append(ss, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i), Namespace: fmt.Sprintf("ns-%d", i%nss)},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("app-%d", i)}, ClusterIPs: []string{fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}}})
	}
	var ps []*corev1.Pod
	for i := range pods {
		p := testPod(fmt.Sprintf("ns-%d", i%nss), fmt.Sprintf("pod-%d", i), fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), map[string]string{"app": fmt.Sprintf("app-%d", i%svcs)})
		p.Annotations = map[string]string{AnnotationRedirection: redirectionEnabled}
		ps = append(ps, p)
	}
	return ns, ss, ps
}

// BenchmarkIngest feeds 50 namespaces, 1000 services and 5000 pods into an
// empty model (the initial sync) and reports CPU per pod and the heap the
// model holds afterwards.
func BenchmarkIngest(b *testing.B) {
	ns, ss, ps := scaleObjects(50, 1000, 5000)
	var m *Model
	b.ReportAllocs()
	for b.Loop() {
		m = New(Config{RequireRedirection: true}, slog.New(slog.DiscardHandler))
		for _, n := range ns {
			m.UpsertNamespace(n)
		}
		for _, s := range ss {
			m.UpsertService(s)
		}
		for _, p := range ps {
			m.UpsertPod(p)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/5000/1e6, "ms/pod")
	b.StopTimer()
	var before, after runtime.MemStats
	m = nil
	compact := make([]*Pod, len(ps))
	for i, p := range ps {
		compact[i] = PodFrom(p)
	}
	runtime.GC()
	runtime.ReadMemStats(&before)
	m = New(Config{RequireRedirection: true}, slog.New(slog.DiscardHandler))
	for _, n := range ns {
		m.UpsertNamespace(n)
	}
	for _, s := range ss {
		m.UpsertService(s)
	}
	for _, p := range compact {
		m.UpsertCompactPod(p)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Outputs and indexes only: the input objects were allocated before.
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "model-MB")
	runtime.KeepAlive(m)
	runtime.KeepAlive(ps)
}

// BenchmarkPodUpdate times one pod's status change against a full model,
// beside a no-op update (same content) as the baseline.
func BenchmarkPodUpdate(b *testing.B) {
	ns, ss, ps := scaleObjects(50, 1000, 5000)
	m := New(Config{}, slog.New(slog.DiscardHandler))
	for _, n := range ns {
		m.UpsertNamespace(n)
	}
	for _, s := range ss {
		m.UpsertService(s)
	}
	for _, p := range ps {
		m.UpsertPod(p)
	}
	b.Run("noop", func(b *testing.B) {
		for b.Loop() {
			m.UpsertPod(ps[42])
		}
	})
	b.Run("flip-ready", func(b *testing.B) {
		i := 0
		for b.Loop() {
			p := ps[42].DeepCopy()
			if i%2 == 0 {
				p.Status.Conditions[0].Status = corev1.ConditionFalse
			}
			i++
			m.UpsertPod(p)
		}
	})
}
