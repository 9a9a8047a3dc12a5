package scale

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sync"
	"time"
)

// Process is a snapshot of a process's resource use.
type Process struct {
	// RSS and AnonRSS are resident and anonymous resident bytes.
	RSS, AnonRSS int64
	// CPU is user plus system CPU time.
	CPU time.Duration
}

// MeasureProcess reads pid's memory and CPU use.
func MeasureProcess(pid int) (Process, error) { return measureProcess(pid) }

// ColdStartResult is what ColdStart measured.
type ColdStartResult struct {
	// Ready is from process start to the first 200 from the ready URL.
	Ready time.Duration
	// AtReady is the process's use when it became ready.
	AtReady Process
}

// ColdStart starts cmd, polls readyURL every 5 ms until it answers 200,
// and measures the process then. The returned stop function (never nil,
// idempotent) ends the process: SIGTERM, then kill after 10 s; call it in
// every case.
func ColdStart(ctx context.Context, cmd *exec.Cmd, readyURL string, limit time.Duration) (ColdStartResult, func(), error) {
	var res ColdStartResult
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, func() {}, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			select {
			case err := <-exited:
				exited <- err
				return
			default:
			}
			terminate(cmd)
			select {
			case err := <-exited:
				exited <- err
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill() // it may exit just now; Wait tells
				exited <- <-exited
			}
		})
	}
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := hc.Get(readyURL)
		if err == nil {
			_ = resp.Body.Close() // only the status counts
			if resp.StatusCode == http.StatusOK {
				res.Ready = time.Since(start)
				break
			}
		}
		if time.Now().After(deadline) {
			return res, stop, fmt.Errorf("not ready after %s", limit)
		}
		select {
		case <-ctx.Done():
			return res, stop, ctx.Err()
		case err := <-exited:
			exited <- err
			return res, stop, fmt.Errorf("exited before ready: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	p, err := MeasureProcess(cmd.Process.Pid)
	if err != nil {
		return res, stop, err
	}
	res.AtReady = p
	return res, stop, nil
}
