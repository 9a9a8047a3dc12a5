// Command echo is the lab's sample workload.
//
//	echo [serve] [--http :8080] [--tcp :9000] [--udp :9001] [--grpc :7070] [--https :8443 --tls-cert F --tls-key F [--client-ca F]]
//	echo client --url http://echo.demo:8080/path [--h2c] [-H "Name: value"]... [--count N]
//	echo client --tcp echo.demo:9000 [--message text]
//	echo client --udp echo.demo:9001 [--message text]
//	echo client --grpc echo.demo:7070 [--grpc-stream N]
//	echo client ... [--count N] [--concurrency C] [--summary]
//
// Server query parameters shape HTTP answers for tests: status=N,
// delay=D, fail=P (503, or failstatus=N, to P percent of requests). The
// VERSION variable becomes the reply's pod.version.
//
// The server replies with JSON naming the serving pod (POD_NAME,
// POD_NAMESPACE, POD_IP, NODE_NAME, SERVICE_ACCOUNT from the environment)
// and what arrived; the client prints one JSON result per call.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/weftmesh/weft/e2e/echo"
	weftlog "github.com/weftmesh/weft/pkg/log"
)

func main() {
	args := os.Args[1:]
	mode := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch mode {
	case "serve":
		err = serve(ctx, args)
	case "client":
		err = client(ctx, args)
	default:
		err = fmt.Errorf("unknown mode %q: want serve or client", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("echo serve", flag.ContinueOnError)
	var cfg echo.Config
	var lf weftlog.Flags
	fs.StringVar(&cfg.HTTPAddr, "http", ":8080", "HTTP/1.1 and h2c listen address (empty disables)")
	fs.StringVar(&cfg.TCPAddr, "tcp", ":9000", "raw TCP echo listen address (empty disables)")
	fs.StringVar(&cfg.UDPAddr, "udp", ":9001", "UDP echo listen address (empty disables)")
	fs.StringVar(&cfg.GRPCAddr, "grpc", ":7070", "gRPC echo and health listen address (empty disables)")
	fs.StringVar(&cfg.TLSAddr, "https", "", "HTTPS listen address (needs --tls-cert and --tls-key)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "HTTPS certificate (PEM)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "HTTPS key (PEM)")
	fs.StringVar(&cfg.ClientCA, "client-ca", "", "require client certificates signed by this CA (PEM)")
	lf.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	opts := lf.Options()
	opts.Output = os.Stderr
	root, err := weftlog.New(opts)
	if err != nil {
		return err
	}
	return echo.Run(ctx, cfg, root.Logger("echo"))
}

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func client(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("echo client", flag.ContinueOnError)
	var cfg echo.ClientConfig
	var headers headerList
	fs.StringVar(&cfg.URL, "url", "", "http:// or https:// URL to call")
	fs.BoolVar(&cfg.H2C, "h2c", false, "use cleartext HTTP/2 (prior knowledge)")
	fs.StringVar(&cfg.Method, "method", "GET", "HTTP method")
	fs.Var(&headers, "H", `request header "Name: value" (repeatable)`)
	fs.StringVar(&cfg.CACert, "ca", "", "CA to verify an https server (PEM)")
	fs.StringVar(&cfg.Cert, "cert", "", "client certificate (PEM)")
	fs.StringVar(&cfg.Key, "key", "", "client key (PEM)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "skip https server verification")
	fs.StringVar(&cfg.TCPAddr, "tcp", "", "host:port of a raw TCP echo")
	fs.StringVar(&cfg.UDPAddr, "udp", "", "host:port of a UDP echo")
	fs.StringVar(&cfg.GRPCAddr, "grpc", "", "host:port of a gRPC echo")
	fs.StringVar(&cfg.Message, "message", "hello\n", "bytes to send over TCP (or the gRPC request text)")
	fs.IntVar(&cfg.Count, "count", 1, "number of requests or connections")
	fs.IntVar(&cfg.Concurrency, "concurrency", 1, "calls in flight at once")
	fs.BoolVar(&cfg.Summary, "summary", false, "print one JSON summary (status codes, pods, versions, errors, latency) instead of a line per call, and keep going after errors")
	fs.IntVar(&cfg.GRPCStream, "grpc-stream", 0, "with --grpc: call the server-streaming method asking for N messages")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "timeout per call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.Headers = headers
	if err := cfg.Validate(); err != nil {
		return err
	}
	return echo.RunClient(ctx, cfg, os.Stdout)
}
