package kubelet

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// startProbes runs the container's probes until ctx ends. Without a
// readiness probe the container is ready once started.
func (c *ctr) startProbes(ctx context.Context, pid int) *sync.WaitGroup {
	var wg sync.WaitGroup
	started := make(chan struct{})
	if sp := c.spec.StartupProbe; sp != nil {
		wg.Go(func() {
			runProbe(ctx, sp, func(ctx context.Context) error { return c.probeOnce(ctx, sp, pid) }, func(ok bool, err error) bool {
				if !ok {
					if err != nil {
						c.w.event(c.fieldPath(), v1.EventTypeWarning, "Unhealthy", "Startup probe failed: "+err.Error())
					}
					go c.kill(c.w.gracePeriod(ctx), false)
					return false
				}
				c.update(func(s *ctrStatus) { s.Started = true })
				close(started)
				return false
			})
		})
	} else {
		close(started)
	}
	if rp := c.spec.ReadinessProbe; rp != nil {
		wg.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-started:
			}
			runProbe(ctx, rp, func(ctx context.Context) error { return c.probeOnce(ctx, rp, pid) }, func(ok bool, err error) bool {
				if !ok && err != nil {
					c.w.event(c.fieldPath(), v1.EventTypeWarning, "Unhealthy", "Readiness probe failed: "+err.Error())
				}
				if c.snapshot().Ready != ok {
					c.update(func(s *ctrStatus) { s.Ready = ok })
				}
				return true
			})
		})
	} else {
		wg.Go(func() {
			select {
			case <-ctx.Done():
			case <-started:
				c.update(func(s *ctrStatus) { s.Ready = true })
			}
		})
	}
	if lp := c.spec.LivenessProbe; lp != nil {
		wg.Go(func() {
			select {
			case <-ctx.Done():
				return
			case <-started:
			}
			runProbe(ctx, lp, func(ctx context.Context) error { return c.probeOnce(ctx, lp, pid) }, func(ok bool, err error) bool {
				if ok {
					return true
				}
				msg := "Liveness probe failed"
				if err != nil {
					msg += ": " + err.Error()
				}
				c.w.event(c.fieldPath(), v1.EventTypeWarning, "Unhealthy", msg)
				c.w.event(c.fieldPath(), v1.EventTypeNormal, "Killing", "Container "+c.spec.Name+" failed liveness probe, will be restarted")
				go c.kill(c.w.gracePeriod(ctx), false)
				return false
			})
		})
	}
	return &wg
}

// runProbe probes per p's timing. report gets each settled result (after
// the success/failure thresholds) and returns whether to keep probing.
func runProbe(ctx context.Context, p *v1.Probe, probe func(context.Context) error, report func(ok bool, err error) bool) {
	period := secondsOr(p.PeriodSeconds, 10)
	timeout := secondsOr(p.TimeoutSeconds, 1)
	succT, failT := int(max(p.SuccessThreshold, 1)), int(max(p.FailureThreshold, 3))
	if p.FailureThreshold > 0 {
		failT = int(p.FailureThreshold)
	}
	delay := time.Duration(p.InitialDelaySeconds) * time.Second
	var succ, fail int
	last := -1 // -1 unknown, 0 failed, 1 ok
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = period
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			succ, fail = succ+1, 0
			if succ >= succT && last != 1 {
				last = 1
				if !report(true, nil) {
					return
				}
			}
			continue
		}
		succ, fail = 0, fail+1
		if fail >= failT && (last != 0 || fail == failT) {
			last = 0
			if !report(false, err) {
				return
			}
		}
	}
}

func secondsOr(v int32, def int) time.Duration {
	if v <= 0 {
		return time.Duration(def) * time.Second
	}
	return time.Duration(v) * time.Second
}

// probeOnce runs one probe attempt inside the pod's network namespace.
func (c *ctr) probeOnce(ctx context.Context, p *v1.Probe, pid int) error {
	w := c.w
	w.mu.Lock()
	sb := w.sandbox
	w.mu.Unlock()
	if sb == nil {
		return fmt.Errorf("no sandbox")
	}
	podIP := firstIPv4(sb.IPs)
	switch {
	case p.Exec != nil:
		cmd := exec.CommandContext(ctx, w.k.cfg.ShimPath, append([]string{shimCommand, "exec", strconv.Itoa(pid), "--"}, p.Exec.Command...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("command %q: %w: %s", strings.Join(p.Exec.Command, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	case p.HTTPGet != nil:
		return httpProbe(ctx, sb.NetNS, podIP, c.spec, p.HTTPGet)
	case p.TCPSocket != nil:
		host := p.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		port, err := probePort(c.spec, p.TCPSocket.Port)
		if err != nil {
			return err
		}
		conn, err := dialInNetns(ctx, sb.NetNS, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case p.GRPC != nil:
		// Without a gRPC health client here, a connectable port counts.
		conn, err := dialInNetns(ctx, sb.NetNS, "tcp", net.JoinHostPort(podIP, strconv.Itoa(int(p.GRPC.Port))))
		if err != nil {
			return err
		}
		return conn.Close()
	}
	return fmt.Errorf("probe has no handler")
}

func probePort(c *v1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("no container port named %q", port.StrVal)
}

func httpProbe(ctx context.Context, netns, podIP string, c *v1.Container, h *v1.HTTPGetAction) error {
	host := h.Host
	if host == "" {
		host = podIP
	}
	port, err := probePort(c, h.Port)
	if err != nil {
		return err
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialInNetns(ctx, netns, network, addr)
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // as the kubelet does for probes
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kube-probe/1.37")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
		} else {
			req.Header.Add(hd.Name, hd.Value)
		}
	}
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10)) // only the status counts
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// dialInNetns opens a connection whose socket lives in the netns at path
// (the current netns when path is empty).
func dialInNetns(ctx context.Context, path, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := inNetns(path, func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// runHook runs a lifecycle hook (exec, HTTP GET or sleep) for the
// container instance with process id pid.
func (c *ctr) runHook(ctx context.Context, h *v1.LifecycleHandler, pid int) error {
	switch {
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return nil
	case h.Exec != nil:
		return c.probeOnce(ctx, &v1.Probe{ProbeHandler: v1.ProbeHandler{Exec: h.Exec}}, pid)
	case h.HTTPGet != nil:
		return c.probeOnce(ctx, &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: h.HTTPGet}}, pid)
	case h.TCPSocket != nil:
		return c.probeOnce(ctx, &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: h.TCPSocket}}, pid)
	}
	return nil
}
