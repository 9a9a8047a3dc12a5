//go:build e2e

package kubelet_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/e2e/lab"
)

const kubeletManifest = `
apiVersion: v1
kind: Namespace
metadata: {name: kl}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: kl}
data: {greeting: hello}
---
apiVersion: v1
kind: Pod
metadata: {name: life, namespace: kl}
spec:
  terminationGracePeriodSeconds: 5
  initContainers:
  - name: init
    image: weft/echo:latest
    command: ["sh", "-c", "echo from-init > /data/init"]
    volumeMounts: [{name: work, mountPath: /data}]
  containers:
  - name: app
    image: weft/echo:latest
    args: ["serve", "--http", ":8080", "--tcp", ""]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
    livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 2}
    volumeMounts:
    - {name: work, mountPath: /data}
    - {name: cfg, mountPath: /etc/cfg}
  volumes:
  - {name: work, emptyDir: {}}
  - {name: cfg, configMap: {name: cfg}}
---
apiVersion: v1
kind: Pod
metadata: {name: crash, namespace: kl}
spec:
  containers:
  - {name: c, image: weft/echo:latest, args: ["no-such-mode"]}
---
apiVersion: v1
kind: Pod
metadata: {name: noimage, namespace: kl}
spec:
  containers:
  - {name: c, image: weft/does-not-exist:1}
---
apiVersion: v1
kind: Pod
metadata: {name: unhealthy, namespace: kl}
spec:
  containers:
  - name: c
    image: weft/echo:latest
    args: ["serve", "--http", ":8080", "--tcp", ""]
    livenessProbe: {exec: {command: ["false"]}, periodSeconds: 1, failureThreshold: 1}
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn, namespace: kl}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: weft/echo:latest
    command: ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: once, namespace: kl}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: weft/echo:latest, command: ["sh", "-c", "echo done"]}
`

func waitPod(t *testing.T, cs kubernetes.Interface, name, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var p *corev1.Pod
	for time.Now().Before(deadline) {
		var err error
		p, err = cs.CoreV1().Pods("kl").Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && ok(p) {
			return p
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("pod %s never %s; status: %+v", name, what, p.Status)
	return nil
}

func waiting(reason string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == reason
	}
}

// TestKubeletLite exercises kubelet-lite's pod runtime on a one-node lab.
func TestKubeletLite(t *testing.T) {
	l := lab.Start(t, lab.Options{Nodes: 1, SkipDNS: true})
	cs := l.Clientset()
	// The namespace's default ServiceAccount appears shortly after it.
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if err = l.Apply(kubeletManifest); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}

	t.Run("init, volumes, probes, logs, exec", func(t *testing.T) {
		waitPod(t, cs, "life", "Ready", func(p *corev1.Pod) bool {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return true
				}
			}
			return false
		})
		out, err := l.Kubectl("exec", "-n", "kl", "life", "-c", "app", "--", "sh", "-c", "cat /data/init /etc/cfg/greeting; hostname")
		if err != nil || out != "from-init\nhellolife\n" {
			t.Errorf("exec = %q, %v", out, err)
		}
		if out, err := l.Kubectl("logs", "-n", "kl", "life", "-c", "app"); err != nil || !strings.Contains(out, "serving") {
			t.Errorf("logs = %q, %v", out, err)
		}
	})

	t.Run("crash loop back-off and previous logs", func(t *testing.T) {
		waitPod(t, cs, "crash", "CrashLoopBackOff", func(p *corev1.Pod) bool {
			return waiting("CrashLoopBackOff")(p) && p.Status.ContainerStatuses[0].RestartCount >= 2
		})
		out, err := l.Kubectl("logs", "-n", "kl", "crash", "--previous")
		if err != nil || !strings.Contains(out, "no-such-mode") {
			t.Errorf("previous logs = %q, %v", out, err)
		}
	})

	t.Run("unknown image", func(t *testing.T) {
		p := waitPod(t, cs, "noimage", "ErrImagePull", waiting("ErrImagePull"))
		if msg := p.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "weft/does-not-exist") {
			t.Errorf("waiting message %q does not name the image", msg)
		}
		out, _ := l.Kubectl("get", "events", "-n", "kl", "--field-selector", "involvedObject.name=noimage")
		if !strings.Contains(out, "Failed to pull image") {
			t.Errorf("no pull failure event:\n%s", out)
		}
	})

	t.Run("liveness failure restarts", func(t *testing.T) {
		waitPod(t, cs, "unhealthy", "restarted", func(p *corev1.Pod) bool {
			cs := p.Status.ContainerStatuses
			return len(cs) == 1 && cs[0].RestartCount >= 1
		})
	})

	t.Run("completed pod", func(t *testing.T) {
		waitPod(t, cs, "once", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	})

	t.Run("graceful deletion kills after the grace period and removes the netns", func(t *testing.T) {
		p := waitPod(t, cs, "stubborn", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		netns := filepath.Join("/var/run/netns", l.Name()+"-pod-"+strings.ReplaceAll(string(p.UID), "-", "")[:12])
		if _, err := os.Stat(netns); err != nil {
			t.Fatalf("pod netns: %v", err)
		}
		start := time.Now()
		if _, err := l.Kubectl("delete", "-n", "kl", "pod", "stubborn", "once", "--wait=true", "--timeout=30s"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 2*time.Second || d > 15*time.Second {
			t.Errorf("deletion took %s; want the 2s grace period then SIGKILL", d)
		}
		if _, err := os.Stat(netns); err == nil {
			t.Errorf("netns %s remains after deletion", netns)
		}
	})
}
