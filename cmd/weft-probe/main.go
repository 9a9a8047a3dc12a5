// Command weft-probe is the e2e suites' fault and attack client, run in a
// pod's network namespace:
//
//	weft-probe stream --target ip:9000 [--target ...] [--duration 60s] [--concurrency 16]
//	                  [--min-size 1] [--max-size 4194304] [--chunk 32768] [--pace 20ms]
//	                  [--timeout 30s] [--seed N] [--count N] [--window 1m]
//	weft-probe hbone --addr ip:15008 --authority ip:port [--cert F --key F] [-H "Name: value"]...
//	weft-probe csr --ca ip:15012 --server-name istiod.ns.svc --root F --token F --identity spiffe://... [--impersonate] [--out-cert F --out-key F]
//
// Each prints one JSON report on stdout.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/weftmesh/weft/e2e/probe"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "weft-probe:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("want a mode: stream, hbone or csr")
	}
	var out any
	switch args[0] {
	case "stream":
		fs := flag.NewFlagSet("stream", flag.ContinueOnError)
		var cfg probe.StreamConfig
		var targets list
		fs.Var(&targets, "target", "raw TCP echo host:port (repeatable)")
		fs.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to start new connections")
		fs.IntVar(&cfg.Count, "count", 0, "stop after this many connections (0: no limit)")
		fs.IntVar(&cfg.Concurrency, "concurrency", 16, "connections open at once")
		fs.IntVar(&cfg.MinSize, "min-size", 1, "smallest payload (bytes)")
		fs.IntVar(&cfg.MaxSize, "max-size", 4<<20, "largest payload (bytes)")
		fs.IntVar(&cfg.Chunk, "chunk", 32<<10, "write size (bytes)")
		fs.DurationVar(&cfg.Pace, "pace", 20*time.Millisecond, "pause between writes")
		fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "bound on each connection")
		fs.DurationVar(&cfg.Window, "window", 0, "report per window of this length (0: no windows)")
		fs.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "payload seed")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg.Targets = targets
		rep, err := probe.Stream(ctx, cfg)
		if err != nil {
			return err
		}
		out = rep
	case "hbone":
		fs := flag.NewFlagSet("hbone", flag.ContinueOnError)
		var cfg probe.HBONEConfig
		var headers list
		fs.StringVar(&cfg.Addr, "addr", "", "HBONE address ip:15008")
		fs.StringVar(&cfg.Authority, "authority", "", "CONNECT target ip:port")
		fs.StringVar(&cfg.Cert, "cert", "", "client certificate chain (PEM)")
		fs.StringVar(&cfg.Key, "key", "", "client key (PEM)")
		fs.Var(&headers, "H", "extra CONNECT header \"Name: value\" (repeatable)")
		fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "bound on the attempt")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg.Headers = headers
		res, err := probe.HBONE(ctx, cfg)
		if err != nil {
			return err
		}
		out = res
	case "csr":
		fs := flag.NewFlagSet("csr", flag.ContinueOnError)
		var cfg probe.CSRConfig
		fs.StringVar(&cfg.Address, "ca", "", "CA address host:port")
		fs.StringVar(&cfg.ServerName, "server-name", "", "name on the CA's serving certificate")
		fs.StringVar(&cfg.RootFile, "root", "", "root certificate verifying the CA (PEM)")
		fs.StringVar(&cfg.TokenFile, "token", "", "bearer token file")
		fs.StringVar(&cfg.Identity, "identity", "", "SPIFFE ID to ask for")
		fs.BoolVar(&cfg.Impersonate, "impersonate", false, "ask on behalf of a pod (ImpersonatedIdentity)")
		fs.StringVar(&cfg.OutCert, "out-cert", "", "write the issued chain here (PEM)")
		fs.StringVar(&cfg.OutKey, "out-key", "", "write the key here (PEM)")
		fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "bound on the request")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		res, err := probe.CSR(ctx, cfg)
		if err != nil {
			return err
		}
		out = res
	default:
		return fmt.Errorf("unknown mode %q: want stream, hbone or csr", args[0])
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
