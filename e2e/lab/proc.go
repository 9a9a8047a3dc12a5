package lab

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// proc is one long-running lab component. Its output goes to a log file;
// it runs in its own process group so a terminal's Ctrl-C reaches only the
// supervisor, which stops components in order.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *slog.Logger

	done chan struct{} // closed when the process has exited
	err  error         // exit error, valid after done
}

// procSpec says what to run and where.
type procSpec struct {
	name    string   // component name, also the log file's name
	netns   string   // network namespace path to start in ("" = the caller's)
	bin     string   // absolute binary path
	args    []string // arguments
	env     []string // extra environment
	logDir  string   // directory of the log file
	workDir string   // working directory ("" = logDir)
}

func startProc(s procSpec, log *slog.Logger) (*proc, error) {
	lf, err := os.OpenFile(filepath.Join(s.logDir, s.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log for %s: %w", s.name, err)
	}
	defer func() { _ = lf.Close() }() // the child holds its own descriptor
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = s.workDir
	if cmd.Dir == "" {
		cmd.Dir = s.logDir
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.netns != "" {
		err = startInNetns(s.netns, cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	p := &proc{name: s.name, cmd: cmd, log: log.With("component", s.name), done: make(chan struct{})}
	go func() { // owned by p: ends when the process exits
		p.err = cmd.Wait()
		close(p.done)
	}()
	p.log.Debug("started", "pid", cmd.Process.Pid)
	return p, nil
}

// pid returns the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs the process group.
// Safe to call more than once.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.log.Warn("did not stop in time, killing", "grace", grace)
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// procGroup stops its processes in reverse start order.
type procGroup struct {
	mu     sync.Mutex
	procs  []*proc
	graces []time.Duration
}

func (g *procGroup) add(p *proc, grace time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.procs = append(g.procs, p)
	g.graces = append(g.graces, grace)
}

// stopAll stops every process, last started first.
func (g *procGroup) stopAll() {
	g.mu.Lock()
	procs, graces := g.procs, g.graces
	g.procs, g.graces = nil, nil
	g.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(graces[i])
	}
}

// firstExited returns a component that has exited, or nil.
func (g *procGroup) firstExited() *proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.procs {
		if p.exited() {
			return p
		}
	}
	return nil
}

// exitError describes how p ended.
func (p *proc) exitError() error {
	if p.err == nil {
		return fmt.Errorf("%s exited", p.name)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return fmt.Errorf("%s exited: %s", p.name, ee.ProcessState)
	}
	return fmt.Errorf("%s: %w", p.name, p.err)
}
