package lab

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// SupervisorLog is where a detached supervisor's own log goes. It sits
// beside the state directory so it survives a failed start; Down removes it.
func SupervisorLog(root, name string) string { return StateDir(root, name) + ".log" }

// LaunchOptions configure Launch.
type LaunchOptions struct {
	Name  string
	Nodes int
	Root  string
	// Self is the weft-lab binary; it is run as `Self serve ...`.
	Self string
	// Echo is the binary for the weft/echo image (default BinariesAt(Root).Echo).
	Echo string
	// Timeout bounds the wait for Ready (default 3 minutes).
	Timeout time.Duration
}

// Launch starts a detached supervisor (`weft-lab serve`) that owns the lab's
// processes and outlives the caller, and waits until it reports the lab
// Ready. On failure it returns the end of the supervisor's log.
func Launch(ctx context.Context, o LaunchOptions) (State, error) {
	if err := ValidateName(o.Name); err != nil {
		return State{}, err
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	dir := StateDir(o.Root, o.Name)
	if s, err := ReadState(dir); err == nil && supervisorAlive(s) {
		return s, fmt.Errorf("lab %s is already running (pid %d); stop it with weft-lab down --name %s", o.Name, s.SupervisorPID, o.Name)
	}
	if err := os.MkdirAll(LabsDir(o.Root), 0o755); err != nil {
		return State{}, fmt.Errorf("create labs dir: %w", err)
	}
	logPath := SupervisorLog(o.Root, o.Name)
	lf, err := os.Create(logPath)
	if err != nil {
		return State{}, fmt.Errorf("create supervisor log: %w", err)
	}
	defer func() { _ = lf.Close() }() // the supervisor holds its own descriptor
	args := []string{"serve", "--name", o.Name, "--nodes", strconv.Itoa(o.Nodes), "--root", o.Root}
	if o.Echo != "" {
		args = append(args, "--echo", o.Echo)
	}
	cmd := exec.Command(o.Self, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = o.Root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return State{}, fmt.Errorf("start lab supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends when the supervisor does; harmless if we return first

	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return State{}, fmt.Errorf("wait for lab %s: %w (it keeps starting; weft-lab down --name %s stops it)", o.Name, ctx.Err(), o.Name)
		case <-deadline.C:
			return State{}, fmt.Errorf("lab %s not ready after %s; see %s and %s/logs", o.Name, o.Timeout, logPath, dir)
		case err := <-exited:
			return State{}, fmt.Errorf("lab supervisor exited (%v):\n%s", err, tail(logPath, 30))
		case <-tick.C:
			s, err := ReadState(dir)
			if err != nil || s.SupervisorPID != cmd.Process.Pid {
				continue
			}
			switch s.Phase {
			case PhaseReady:
				return s, nil
			case PhaseFailed:
				return s, fmt.Errorf("lab %s failed to start: %s\n%s", o.Name, s.Error, tail(logPath, 30))
			}
		}
	}
}

// Serve runs a lab in this process until ctx ends, then tears it down: the
// body of `weft-lab serve`.
func Serve(ctx context.Context, o Options) error {
	c, err := Up(ctx, o)
	if err != nil {
		return err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	reported := false
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping lab", "lab", c.Plan.Name)
			return c.Close()
		case <-tick.C:
			if err := c.Err(); err != nil && !reported {
				log.Error("lab component stopped; the lab keeps running without it", "err", err)
				reported = true
			}
		}
	}
}
