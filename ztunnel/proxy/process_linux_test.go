//go:build linux

package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/identity/certmgr"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
	"github.com/weftmesh/weft/pkg/netns"
	"github.com/weftmesh/weft/pkg/wds"
	"github.com/weftmesh/weft/ztunnel/inpod"
	"github.com/weftmesh/weft/ztunnel/proxy"
	"github.com/weftmesh/weft/ztunnel/telemetry"
	"github.com/weftmesh/weft/ztunnel/tunnel"
)

// Some tests need ztunnel in a process of its own: to kill it as a crash
// would, or to measure its memory alone. They re-execute the test binary
// running TestZtunnelProcess, which serves the pods of a topology the
// parent made as two ztunnel "nodes" (the client pods' and the server
// pods'), each a proxy with its own pod manager, and answers the parent's
// commands on stdin with lines on stdout.

// childEnv carries the JSON childSpec to the ztunnel process.
const childEnv = "WEFT_PROXY_TEST_ZTUNNEL"

// childSpec describes the ztunnel process's pods and caps.
type childSpec struct {
	// Prefix names the topology's namespaces (Prefix + pod name).
	Prefix string
	// Clients and Servers are the pods of the two nodes.
	Clients, Servers []childPod
	// MaxConnsPerPod and MaxConnsPerNode are the proxies' caps (zero:
	// ztunnel's defaults).
	MaxConnsPerPod, MaxConnsPerNode int
	// FDs is the RLIMIT_NOFILE the process raises itself to.
	FDs uint64
}

type childPod struct{ Name, IP, SA string }

// childMem is the ztunnel process's memory after a garbage collection,
// and the connections each node holds.
type childMem struct {
	HeapInuse, StackInuse, Sys uint64
	RSSKiB                     int64
	Goroutines                 int
	Open                       []int64
}

// TestZtunnelProcess is the ztunnel process of the process tests; it skips
// unless one of them started it.
func TestZtunnelProcess(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("the ztunnel process of the process tests (started by them)")
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	if spec.FDs > 0 {
		raiseFDLimit(t, spec.FDs)
	}
	log := slog.New(slog.DiscardHandler)
	var rec *telemetry.Recorder
	if os.Getenv("WEFT_PROXY_TEST_LOG") != "" {
		// Debugging: ztunnel's logs and access log on stderr.
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		rec = telemetry.NewRecorder(nil, log)
	}
	certs, err := certmgr.New(certmgr.Config{Fetcher: fetcher{identitytest.NewCA("process-root")}})
	if err != nil {
		t.Fatal(err)
	}
	store := wds.New(wds.Config{})
	var res []*discoveryv3.Resource
	for _, p := range append(append([]childPod(nil), spec.Clients...), spec.Servers...) {
		res = append(res, resource(t, "c1//Pod/demo/"+p.Name, workload(p.Name, p.IP, p.SA, nil)))
	}
	if err := store.Apply(wds.AddressType, res, nil); err != nil {
		t.Fatal(err)
	}
	if err := store.Apply(wds.AuthorizationType, nil, nil); err != nil {
		t.Fatal(err)
	}
	var nodes []*proxy.Proxy
	for _, pods := range [][]childPod{spec.Clients, spec.Servers} {
		tcfg := tunnel.Config{Certs: certs, Log: log}
		tc, err := tunnel.NewClient(tcfg)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := tunnel.NewServer(tcfg)
		if err != nil {
			t.Fatal(err)
		}
		px, err := proxy.New(proxy.Config{
			Store: store, Certs: certs, Tunnels: tc, Inbound: ts, Recorder: rec, PreserveSource: true,
			ReadyTimeout: 5 * time.Second, ConnectTimeout: 5 * time.Second, Log: log,
			MaxConnsPerPod: spec.MaxConnsPerPod, MaxConnsPerNode: spec.MaxConnsPerNode,
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, px)
		mgr := inpod.NewManager(inpod.ManagerConfig{Handler: px, DrainTimeout: time.Second, Log: log})
		for _, p := range pods {
			f, err := os.Open(netns.NamedDir + "/" + spec.Prefix + p.Name)
			if err != nil {
				t.Fatal(err)
			}
			if err := mgr.Add(context.Background(), "uid-"+p.Name, &zdsapi.WorkloadInfo{Name: p.Name, Namespace: "demo", ServiceAccount: p.SA}, f); err != nil {
				t.Fatal(err)
			}
		}
	}
	fmt.Println("weft-helper ready")
	// The parent ends this process with SIGKILL; stdin closing ends it too.
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch sc.Text() {
		case "mem":
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			m := childMem{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Sys: ms.Sys, RSSKiB: rssKiB(), Goroutines: runtime.NumGoroutine()}
			for _, px := range nodes {
				m.Open = append(m.Open, px.OpenConns())
			}
			b, _ := json.Marshal(m)
			fmt.Printf("weft-helper mem %s\n", b)
		default:
			if dir, ok := strings.CutPrefix(sc.Text(), "profile "); ok {
				fmt.Printf("weft-helper profiled %v\n", writeProfiles(dir))
			}
		}
	}
}

// writeProfiles writes this process's goroutines, memory statistics and
// /proc status as the load left them (no collection first) into dir, then,
// when GODEBUG sets memprofilerate, its heap profile (in use and allocated
// so far) after two collections.
func writeProfiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, f func(io.Writer) error) error {
		out, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := f(out); err != nil {
			_ = out.Close()
			return err
		}
		return out.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return err
	}
	errs := []error{
		write("goroutine.txt", func(w io.Writer) error { return pprof.Lookup("goroutine").WriteTo(w, 1) }),
		write("memstats.json", func(w io.Writer) error { return json.NewEncoder(w).Encode(ms) }),
		write("status", func(w io.Writer) error { _, err := w.Write(status); return err }),
	}
	if !strings.Contains(os.Getenv("GODEBUG"), "memprofilerate=") {
		// Without a chosen sampling rate the profile says little, and
		// writing it allocates about 2 MB: the next figures would count
		// that garbage.
		return errors.Join(errs...)
	}
	// The heap profile publishes a cycle's allocations two collections
	// later: collect twice so that it counts every allocation so far.
	runtime.GC()
	runtime.GC()
	errs = append(errs, write("heap.pb.gz", func(w io.Writer) error { return pprof.Lookup("heap").WriteTo(w, 0) }))
	return errors.Join(errs...)
}

// rssKiB returns this process's resident set size.
func rssKiB() int64 {
	if kb, ok := vmRSS(os.Getpid()); ok {
		return kb
	}
	return -1
}

// raiseFDLimit raises RLIMIT_NOFILE (soft and hard) to at least n, or
// skips the test when that is not allowed.
func raiseFDLimit(t testing.TB, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= n {
		return
	}
	rl.Cur = n
	rl.Max = max(rl.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skipf("cannot raise RLIMIT_NOFILE to %d: %v", n, err)
	}
}

// helperProcess is a running helper process: the test binary running one
// test function, taking commands on stdin and answering with
// "weft-helper <kind> ..." lines on stdout.
type helperProcess struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	dead bool
	// profiles: the process answers "profile DIR" (a ztunnel process).
	profiles bool
}

// startZtunnel starts the ztunnel process for spec and waits until it
// serves its pods; it is killed when the test ends.
func startZtunnel(t testing.TB, spec childSpec) *helperProcess {
	t.Helper()
	z := startHelper(t, "TestZtunnelProcess", childEnv, spec)
	z.profiles = true
	return z
}

// startHelper runs test in a new process of the test binary with the JSON
// of spec in env, and waits for its "ready" line; it is killed when the
// test ends.
func startHelper(t testing.TB, test, env string, spec any) *helperProcess {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), env+"="+string(raw))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	z := &helperProcess{cmd: cmd, in: in, out: bufio.NewScanner(out)}
	z.out.Buffer(make([]byte, 64<<10), 1<<20)
	t.Cleanup(z.kill)
	if _, err := z.line("ready"); err != nil {
		t.Fatalf("%s process: %v", test, err)
	}
	return z
}

// line reads the process's output up to its next "weft-helper <kind>"
// line and returns the rest of that line.
func (z *helperProcess) line(kind string) (string, error) {
	for z.out.Scan() {
		if rest, ok := strings.CutPrefix(z.out.Text(), "weft-helper "+kind); ok {
			return strings.TrimSpace(rest), nil
		}
	}
	return "", fmt.Errorf("ended before %q: %v", kind, z.out.Err())
}

// ask sends cmd and returns the rest of the "weft-helper <kind>" answer.
func (z *helperProcess) ask(cmd, kind string) (string, error) {
	if _, err := io.WriteString(z.in, cmd+"\n"); err != nil {
		return "", err
	}
	return z.line(kind)
}

// mem asks a ztunnel process for its memory.
func (z *helperProcess) mem(t testing.TB) childMem {
	t.Helper()
	rest, err := z.ask("mem", "mem")
	if err != nil {
		t.Fatal(err)
	}
	var m childMem
	if err := json.Unmarshal([]byte(rest), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would,
// and waits for it. It is idempotent.
func (z *helperProcess) kill() {
	if z.dead {
		return
	}
	z.dead = true
	_ = z.cmd.Process.Kill()
	_ = z.in.Close()
	_ = z.cmd.Wait()
}

// holderEnv carries the JSON holderSpec to a holder process.
const holderEnv = "WEFT_PROXY_TEST_HOLDER"

// holderSpec describes a holder process: the application ends of many
// connections, held idle outside the ztunnel process so that they do not
// count in its memory (and spread over processes, for the fd limit).
type holderSpec struct {
	// Prefix, Client and Server name the client's and the server's
	// namespaces; Addr is where the client connects (the server's
	// address and port 8080, where the holder listens).
	Prefix, Client, Server, Addr string
}

// TestHolderProcess is a holder process of TestMemory50k; it skips unless
// the test started it. Commands: "dial N" opens N connections from the
// client namespace to Addr ("weft-helper dialed OK ERROR"); "accepted"
// reports how many the server side holds ("weft-helper accepted N").
func TestHolderProcess(t *testing.T) {
	raw := os.Getenv(holderEnv)
	if raw == "" {
		t.Skip("a holder process of TestMemory50k (started by it)")
	}
	var spec holderSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	client, err := netns.Open(netns.NamedDir + "/" + spec.Prefix + spec.Client)
	if err != nil {
		t.Fatal(err)
	}
	server, err := netns.Open(netns.NamedDir + "/" + spec.Prefix + spec.Server)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := server.Listen(context.Background(), nil, "tcp4", "0.0.0.0:8080")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	var accepted atomic.Int64
	go func() { // lives as long as the process
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
			accepted.Add(1)
		}
	}()
	fmt.Println("weft-helper ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "dial":
			n, _ := strconv.Atoi(arg)
			var wg sync.WaitGroup
			var failed atomic.Int64
			var first atomic.Value
			const dialers = 4
			for d := range dialers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := d; i < n; i += dialers {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						c, err := client.Dial(ctx, nil, "tcp4", spec.Addr)
						cancel()
						if err != nil {
							failed.Add(1)
							first.CompareAndSwap(nil, err.Error())
							continue
						}
						mu.Lock()
						held = append(held, c)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			e, _ := first.Load().(string)
			fmt.Printf("weft-helper dialed %d %q\n", int64(n)-failed.Load(), e)
		case "accepted":
			fmt.Printf("weft-helper accepted %d\n", accepted.Load())
		}
	}
}
