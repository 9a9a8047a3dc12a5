package kube

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// PodHTTP fetches a path from a port a pod serves on its own localhost.
type PodHTTP interface {
	// Get returns the body of a GET of path on port in pod namespace/name;
	// a non-2xx status is an error carrying the body.
	Get(ctx context.Context, namespace, pod string, port int, path string) ([]byte, error)
}

// PortForwarder implements PodHTTP with one port-forward per call.
type PortForwarder struct {
	Rest *rest.Config
	Kube kubernetes.Interface
	// Timeout bounds one call (default 15s).
	Timeout time.Duration
}

var _ PodHTTP = (*PortForwarder)(nil)

// Get forwards a free local port to the pod's port, does the GET and
// tears the forward down.
func (f *PortForwarder) Get(ctx context.Context, namespace, pod string, port int, path string) ([]byte, error) {
	timeout := f.Timeout
	if timeout == 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	url := f.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
	rt, upgrader, err := spdy.RoundTripperFor(f.Rest)
	if err != nil {
		return nil, fmt.Errorf("port-forward transport: %w", err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, url)
	ready := make(chan struct{})
	var errOut bytes.Buffer
	fw, err := portforward.NewOnAddressesWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, ready, io.Discard, &errOut)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, port, err)
	}
	done := make(chan struct{})
	var fwdErr error // written before done is closed
	go func() { fwdErr = fw.ForwardPorts(); close(done) }()
	defer func() {
		// Cancelling the context stops the forwarder and closes its
		// listener once (Close as well would close it twice).
		cancel()
		<-done
	}()
	select {
	case <-ready:
	case <-done:
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, port, fwdErr)
	case <-ctx.Done():
		return nil, fmt.Errorf("port-forward to %s/%s:%d: %w", namespace, pod, port, ctx.Err())
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		return nil, fmt.Errorf("port-forward to %s/%s:%d: no local port: %v", namespace, pod, port, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", ports[0].Local, path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errOut.Len() > 0 {
			return nil, fmt.Errorf("GET %s through port-forward: %w (%s)", path, err, bytes.TrimSpace(errOut.Bytes()))
		}
		return nil, fmt.Errorf("GET %s through port-forward: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if resp.StatusCode/100 != 2 {
		return body, fmt.Errorf("GET %s: %s: %s", path, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}
