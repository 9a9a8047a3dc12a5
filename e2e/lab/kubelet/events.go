package kubelet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// eventRecorder posts core/v1 Events about pods, dropping repeats of the
// same event within a short window so crash loops do not flood the API.
type eventRecorder struct {
	client kubernetes.Interface
	node   string
	log    *slog.Logger

	wg   sync.WaitGroup // owns the posting goroutines
	mu   sync.Mutex
	seen map[string]time.Time
}

const eventRepeatWindow = 30 * time.Second

// record posts an event. fieldPath names a container ("spec.containers{x}")
// or is empty for the pod. It never blocks the caller on the API.
func (r *eventRecorder) record(pod *v1.Pod, fieldPath, typ, reason, msg string) {
	key := string(pod.UID) + "|" + fieldPath + "|" + reason + "|" + msg
	now := time.Now()
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[string]time.Time{}
	}
	if t, ok := r.seen[key]; ok && now.Sub(t) < eventRepeatWindow {
		r.mu.Unlock()
		return
	}
	r.seen[key] = now
	for k, t := range r.seen {
		if now.Sub(t) > eventRepeatWindow {
			delete(r.seen, k)
		}
	}
	r.mu.Unlock()
	r.log.Info("pod event", "pod", pod.Namespace+"/"+pod.Name, "type", typ, "reason", reason, "msg", msg)
	if r.client == nil {
		return
	}
	ev := &v1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s.%x", pod.Name, now.UnixNano()),
			Namespace: pod.Namespace,
		},
		InvolvedObject: v1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion, FieldPath: fieldPath,
		},
		Reason:              reason,
		Message:             msg,
		Type:                typ,
		Source:              v1.EventSource{Component: "kubelet", Host: r.node},
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		Count:               1,
		ReportingController: "kubelet",
		ReportingInstance:   r.node,
	}
	r.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := r.client.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			r.log.Debug("post event", "err", err)
		}
	})
}

func containerFieldPath(c *v1.Container, init bool) string {
	if init {
		return "spec.initContainers{" + c.Name + "}"
	}
	return "spec.containers{" + c.Name + "}"
}

// wait waits for events being posted.
func (r *eventRecorder) wait() { r.wg.Wait() }
