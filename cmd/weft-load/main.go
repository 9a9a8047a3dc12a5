// Command weft-load is the whole-mesh benchmark's load generator and
// server, run in lab pods (image weft/weft-load) or in a pod's network
// namespace by cmd/weft-bench.
//
//	weft-load serve [--http :8080] [--source :9100] [--hold :9200]
//	weft-load latency --addr HOST:PORT --rate R [--conns N] [--warmup D] [--duration D]
//	weft-load capacity --addr HOST:PORT [--conns N] [--warmup D] [--duration D]
//	weft-load throughput --addr HOST:PORT [--conns N] [--warmup D] [--duration D]
//	weft-load connrate --addr HOST:PORT [--conns N] [--server-closes] [--warmup D] [--duration D]
//	weft-load hold --addr HOST:PORT --conns N
//	weft-load relay [--tls-out LISTEN=TARGET]... [--tls-in LISTEN=TARGET]...
//	weft-load nginx --port P --upstream HOST:PORT --dir DIR
//	weft-load sleep
//
// Measuring modes print one JSON result on stdout; hold prints its JSON
// line once the connections are open and holds them until signalled.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weftmesh/weft/e2e/loadgen"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: weft-load serve|latency|capacity|throughput|connrate|hold|relay|nginx|sleep [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := loadgen.RaiseFileLimit(1 << 16); err != nil {
		log.Warn("open-file limit", "err", err)
	}
	if err := run(ctx, os.Args[1], os.Args[2:], log); err != nil {
		fmt.Fprintln(os.Stderr, "weft-load:", err)
		os.Exit(1)
	}
}

// loadFlags are the flags the measuring modes share.
type loadFlags struct {
	addr, path       string
	conns            int
	rate             float64
	warmup, duration time.Duration
	serverCloses     bool
}

func (l *loadFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.addr, "addr", "", "HOST:PORT to load")
	fs.StringVar(&l.path, "path", "/", "request path")
	fs.IntVar(&l.conns, "conns", 1, "connections (or workers)")
	fs.Float64Var(&l.rate, "rate", 0, "offered requests per second (latency)")
	fs.DurationVar(&l.warmup, "warmup", time.Second, "warm-up before the measured window")
	fs.DurationVar(&l.duration, "duration", 5*time.Second, "measured window")
	fs.BoolVar(&l.serverCloses, "server-closes", false, "connrate: ask the server to close (Connection: close) instead of closing after the answer")
}

func run(ctx context.Context, mode string, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("weft-load "+mode, flag.ContinueOnError)
	var lf loadFlags
	switch mode {
	case "serve":
		var c loadgen.ServerConfig
		fs.StringVar(&c.HTTP, "http", ":8080", "1 KiB HTTP/1.1 listener (empty disables)")
		fs.StringVar(&c.Source, "source", ":9100", "byte source listener (empty disables)")
		fs.StringVar(&c.Hold, "hold", ":9200", "connection holder listener (empty disables)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return loadgen.Serve(ctx, c, log)
	case "latency", "capacity", "throughput", "connrate", "hold":
		lf.register(fs)
		if err := fs.Parse(args); err != nil {
			return err
		}
		if lf.addr == "" {
			return errors.New("--addr is required")
		}
		return measure(ctx, mode, lf)
	case "relay":
		var routes []loadgen.Route
		for _, m := range []loadgen.RouteMode{loadgen.TLSOut, loadgen.TLSIn} {
			fs.Func(string(m), "LISTEN=TARGET route (repeatable)", func(s string) error {
				r, err := loadgen.ParseRoute(m, s)
				routes = append(routes, r)
				return err
			})
		}
		if err := fs.Parse(args); err != nil {
			return err
		}
		return loadgen.Relay(ctx, routes, log)
	case "nginx":
		port := fs.Int("port", 8081, "listen port")
		upstream := fs.String("upstream", "", "HOST:PORT to proxy to")
		dir := fs.String("dir", "/var/run/weft-bench/nginx", "nginx prefix directory (config, pid, temp files)")
		bin := fs.String("bin", loadgen.NginxBin, "nginx binary")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *upstream == "" {
			return errors.New("--upstream is required")
		}
		return loadgen.RunNginx(ctx, *bin, *dir, *port, *upstream)
	case "sleep":
		<-ctx.Done()
		return nil
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
}

func measure(ctx context.Context, mode string, l loadFlags) error {
	var out any
	var err error
	switch mode {
	case "latency":
		out, err = loadgen.OpenLoop(ctx, loadgen.LatencyConfig{Addr: l.addr, Path: l.path, Rate: l.rate, Conns: l.conns, Warmup: l.warmup, Duration: l.duration})
	case "capacity":
		var rps float64
		rps, err = loadgen.Capacity(ctx, l.addr, l.path, l.conns, l.warmup, l.duration)
		out = map[string]float64{"rps": rps}
	case "throughput":
		out, err = loadgen.Throughput(ctx, l.addr, l.conns, l.warmup, l.duration)
	case "connrate":
		out, err = loadgen.ConnRate(ctx, l.addr, l.conns, l.serverCloses, l.warmup, l.duration)
	case "hold":
		return loadgen.Hold(ctx, l.addr, l.conns, 64, func(r loadgen.HoldResult) { printJSON(r) })
	}
	if err != nil {
		return err
	}
	printJSON(out)
	return nil
}

func printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}
