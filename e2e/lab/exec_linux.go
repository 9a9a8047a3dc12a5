package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// PodNetns returns the path of the network namespace that pod namespace/name
// of lab labName runs in: its node's for hostNetwork pods, otherwise the
// pod namespace (named with the lab's pod prefix) holding the pod's IP.
func PodNetns(ctx context.Context, cs kubernetes.Interface, labName, namespace, name string) (string, error) {
	pod, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
	}
	if pod.Spec.NodeName == "" {
		return "", fmt.Errorf("pod %s/%s is not scheduled yet", namespace, name)
	}
	if pod.Spec.HostNetwork {
		return netnsPath(labName + "-" + pod.Spec.NodeName), nil
	}
	ip := net.ParseIP(pod.Status.PodIP)
	if ip == nil {
		return "", fmt.Errorf("pod %s/%s has no IP yet", namespace, name)
	}
	names, err := netnsWithPrefix(labName + "-pod")
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if has, err := netnsHasIP(netnsPath(n), ip); err == nil && has {
			return netnsPath(n), nil
		}
	}
	return "", fmt.Errorf("no network namespace of lab %s holds pod %s/%s's IP %s", labName, namespace, name, ip)
}

func netnsHasIP(path string, ip net.IP) (bool, error) {
	ns, err := netns.GetFromPath(path) // a handle only; this thread stays put
	if err != nil {
		return false, err
	}
	defer func() { _ = ns.Close() }() // a read-only handle
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return false, err
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			return true, nil
		}
	}
	return false, nil
}

// ExecIn runs argv inside the network namespace at path (in the host's
// mount namespace, so host binaries are at hand) and waits for it. A bare
// argv[0] is looked up in the lab's binary directories (dirs) before PATH,
// so "echo" means the echo workload, not /bin/echo.
func ExecIn(ctx context.Context, path string, dirs []string, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return fmt.Errorf("no command to run")
	}
	bin := argv[0]
	if filepath.Base(bin) == bin {
		for _, d := range dirs {
			if p := filepath.Join(d, bin); isExecutable(p) {
				bin = p
				break
			}
		}
	}
	cmd := exec.CommandContext(ctx, bin, argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := startInNetns(path, cmd); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	return cmd.Wait()
}
