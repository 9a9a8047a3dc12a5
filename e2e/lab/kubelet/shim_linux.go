package kubelet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ShimMain is the entry of the container shim ("ShimPath kubelet-shim
// ARGS..."; args may start with "kubelet-shim"). It never returns on
// success: it replaces itself with the container's binary.
//
//	run SPECFILE           enter the pod netns, set up a private mount
//	                       namespace with the pod's volumes, exec the binary
//	exec PID -- CMD ARGS   run CMD in the namespaces and root of process PID
//	cni SCRATCH ROOT -- PLUGIN
//	                       run a CNI plugin (stdin, env as given) in a private
//	                       mount namespace where nodeViewPaths show ROOT's
func ShimMain(args []string) int {
	if len(args) > 0 && args[0] == shimCommand {
		args = args[1:]
	}
	runtime.LockOSThread() // namespaces are per thread; exec from this one
	var err error
	switch {
	case len(args) == 2 && args[0] == "run":
		err = shimRun(args[1])
	case len(args) >= 4 && args[0] == "exec" && args[2] == "--":
		err = shimExec(args[1], args[3:])
	case len(args) == 5 && args[0] == "cni" && args[3] == "--":
		err = shimCNI(args[1], args[2], args[4])
	default:
		err = fmt.Errorf("usage: %s run SPECFILE | exec PID -- CMD [ARGS...] | cni SCRATCH ROOT -- PLUGIN", shimCommand)
	}
	fmt.Fprintf(os.Stderr, "kubelet-shim: %v\n", err)
	if strings.Contains(err.Error(), "executable file not found") {
		return 127
	}
	return 126
}

func shimRun(specPath string) error {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var spec shimSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("parse spec: %w", err)
	}
	return shimStart(spec)
}

// shimCNI execs a CNI plugin with the shim's own environment, stdin and
// network namespace, with the node root's nodeViewPaths bound over the
// host's (hostPathFor maps them; the sources must exist).
func shimCNI(scratch, rootDir, plugin string) error {
	spec := shimSpec{Scratch: scratch, Path: plugin, Args: []string{plugin}, Env: os.Environ()}
	for _, p := range nodeViewPaths {
		spec.Mounts = append(spec.Mounts, shimMount{Source: hostPathFor(rootDir, "", p), Target: p})
	}
	return shimStart(spec)
}

// shimStart applies spec's namespaces and mounts and execs its binary.
func shimStart(spec shimSpec) error {
	flags := unix.CLONE_NEWNS
	if spec.Hostname != "" {
		flags |= unix.CLONE_NEWUTS
	}
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if spec.NetNS != "" {
		if err := setnsPath(spec.NetNS, unix.CLONE_NEWNET); err != nil {
			return err
		}
	}
	// Hold every source by fd first: a volume may cover the path of a
	// later source (an emptyDir over a parent of the state dir hides it).
	srcs := make([]string, len(spec.Mounts))
	for i, m := range spec.Mounts {
		fd, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open mount source %s: %w", m.Source, err)
		}
		srcs[i] = "/proc/self/fd/" + strconv.Itoa(fd)
	}
	mb, err := newMountBuilder(spec.Scratch)
	if err != nil {
		return err
	}
	for i, m := range spec.Mounts {
		if err := mb.bind(srcs[i], m.Target, m.ReadOnly); err != nil {
			return fmt.Errorf("mount %s: %w", m.Source, err)
		}
	}
	return execIn(spec.WorkDir, spec.Path, spec.Args, spec.Env)
}

func shimExec(pidArg string, argv []string) error {
	pid, err := strconv.Atoi(pidArg)
	if err != nil {
		return fmt.Errorf("bad pid %q", pidArg)
	}
	// setns into a mount namespace needs a thread with its own fs state.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare fs: %w", err)
	}
	proc := fmt.Sprintf("/proc/%d", pid)
	environ, err := os.ReadFile(proc + "/environ")
	if err != nil {
		return fmt.Errorf("read container env: %w", err)
	}
	root, err := os.Open(proc + "/root")
	if err != nil {
		return fmt.Errorf("open container root: %w", err)
	}
	for _, ns := range []struct {
		name string
		flag int
	}{{"net", unix.CLONE_NEWNET}, {"uts", unix.CLONE_NEWUTS}, {"mnt", unix.CLONE_NEWNS}} {
		if err := setnsPath(proc+"/ns/"+ns.name, ns.flag); err != nil {
			return err
		}
	}
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return fmt.Errorf("enter container root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	var env []string
	for _, kv := range strings.Split(string(environ), "\x00") {
		if kv != "" {
			env = append(env, kv)
		}
	}
	return execIn("/", argv[0], argv, env)
}

func setnsPath(path string, flag int) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open namespace: %w", err)
	}
	defer func() { _ = f.Close() }()
	if err := unix.Setns(int(f.Fd()), flag); err != nil {
		return fmt.Errorf("enter namespace %s: %w", path, err)
	}
	return nil
}

// execIn changes to dir and replaces the process with bin, looked up in
// the PATH of env when it has no slash.
func execIn(dir, bin string, argv, env []string) error {
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("chdir %s: %w", dir, err)
	}
	path, err := lookPath(bin, env)
	if err != nil {
		return err
	}
	if err := unix.Exec(path, argv, env); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

func lookPath(bin string, env []string) (string, error) {
	if strings.Contains(bin, "/") {
		return bin, nil
	}
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, d := range filepath.SplitList(pathVar) {
		p := filepath.Join(d, bin)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH", bin)
}
