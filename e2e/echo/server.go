package echo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// Config configures the echo server. Empty addresses disable a listener;
// at least one must be set.
type Config struct {
	// HTTPAddr serves HTTP/1.1 and h2c (prior knowledge), e.g. ":8080".
	HTTPAddr string
	// TCPAddr serves the raw TCP echo, e.g. ":9000".
	TCPAddr string
	// UDPAddr serves the UDP echo, e.g. ":9001".
	UDPAddr string
	// GRPCAddr serves the gRPC echo (GRPCMethod) and the gRPC health
	// service over plaintext HTTP/2, e.g. ":7070".
	GRPCAddr string
	// TLSAddr serves HTTPS (HTTP/1.1 and HTTP/2) with TLSCert/TLSKey;
	// when ClientCA is set, client certificates are required and verified.
	TLSAddr, TLSCert, TLSKey, ClientCA string
	// Pod is the identity reported in replies (default PodFromEnv()).
	Pod *Pod
}

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	if c.HTTPAddr == "" && c.TCPAddr == "" && c.TLSAddr == "" && c.GRPCAddr == "" && c.UDPAddr == "" {
		return errors.New("no listener: set at least one of the HTTP, TCP, UDP, gRPC and TLS addresses")
	}
	if c.TLSAddr != "" && (c.TLSCert == "" || c.TLSKey == "") {
		return errors.New("the TLS listener needs a certificate and a key")
	}
	return nil
}

// Handler returns the HTTP handler: /healthz answers "ok"; every other path
// answers a JSON Reply. The query parameters status=N (reply code),
// delay=D (a Go duration, at most 30s, waited before replying) and fail=P
// (answer 503, or failstatus=N, to P percent of requests at random) shape
// the answer for tests.
func Handler(pod Pod) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		code := http.StatusOK
		if s := r.URL.Query().Get("status"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 100 || n > 599 {
				http.Error(w, "status must be an HTTP status code", http.StatusBadRequest)
				return
			}
			code = n
		}
		if s := r.URL.Query().Get("fail"); s != "" {
			pct, err := strconv.ParseFloat(s, 64)
			if err != nil || pct < 0 || pct > 100 {
				http.Error(w, "fail must be a percentage from 0 to 100", http.StatusBadRequest)
				return
			}
			failCode := http.StatusServiceUnavailable
			if fs := r.URL.Query().Get("failstatus"); fs != "" {
				n, err := strconv.Atoi(fs)
				if err != nil || n < 100 || n > 599 {
					http.Error(w, "failstatus must be an HTTP status code", http.StatusBadRequest)
					return
				}
				failCode = n
			}
			if rand.Float64()*100 < pct {
				w.Header().Set("X-Echo-Pod", pod.Name)
				http.Error(w, "injected failure", failCode)
				return
			}
		}
		if s := r.URL.Query().Get("delay"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d < 0 || d > 30*time.Second {
				http.Error(w, "delay must be a duration up to 30s", http.StatusBadRequest)
				return
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		b, err := json.MarshalIndent(replyFor(pod, r), "", "  ")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Pod", pod.Name)
		w.WriteHeader(code)
		_, _ = w.Write(append(b, '\n'))
	})
	return mux
}

// Run serves until ctx ends, then shuts the listeners down gracefully
// (in-flight HTTP requests get up to 5 s).
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	pod := PodFromEnv()
	if cfg.Pod != nil {
		pod = *cfg.Pod
	}
	var lc net.ListenConfig
	type server struct {
		name  string
		serve func() error
		stop  func(context.Context) error
	}
	var servers []server
	closeAll := func() {
		for _, s := range servers {
			_ = s.stop(context.Background())
		}
	}
	if cfg.HTTPAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("listen http: %w", err)
		}
		hs := newHTTPServer(pod)
		hs.Protocols = new(http.Protocols)
		hs.Protocols.SetHTTP1(true)
		hs.Protocols.SetUnencryptedHTTP2(true)
		servers = append(servers, server{"http", func() error { return hs.Serve(ln) }, hs.Shutdown})
		log.Info("serving HTTP/1.1 and h2c", "addr", ln.Addr().String())
	}
	if cfg.TLSAddr != "" {
		tc, err := serverTLS(cfg)
		if err != nil {
			closeAll()
			return err
		}
		ln, err := lc.Listen(ctx, "tcp", cfg.TLSAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen https: %w", err)
		}
		hs := newHTTPServer(pod)
		hs.TLSConfig = tc
		servers = append(servers, server{"https", func() error { return hs.ServeTLS(ln, "", "") }, hs.Shutdown})
		log.Info("serving HTTPS", "addr", ln.Addr().String(), "client_certs", cfg.ClientCA != "")
	}
	if cfg.TCPAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", cfg.TCPAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen tcp: %w", err)
		}
		ts := &tcpServer{pod: pod, ln: ln, log: log}
		servers = append(servers, server{"tcp", ts.serve, ts.shutdown})
		log.Info("serving TCP echo", "addr", ln.Addr().String())
	}
	if cfg.UDPAddr != "" {
		pc, err := lc.ListenPacket(ctx, "udp", cfg.UDPAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen udp: %w", err)
		}
		us := &udpServer{pod: pod, pc: pc, log: log}
		servers = append(servers, server{"udp", us.serve, us.shutdown})
		log.Info("serving UDP echo", "addr", pc.LocalAddr().String())
	}

	if cfg.GRPCAddr != "" {
		ln, err := lc.Listen(ctx, "tcp", cfg.GRPCAddr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen grpc: %w", err)
		}
		gs := newGRPCServer(pod)
		stop := func(ctx context.Context) error {
			done := make(chan struct{})
			go func() { gs.GracefulStop(); close(done) }() // bounded below by Stop
			select {
			case <-done:
			case <-ctx.Done():
				gs.Stop()
				<-done
			}
			return nil
		}
		servers = append(servers, server{"grpc", func() error { return gs.Serve(ln) }, stop})
		log.Info("serving gRPC echo", "addr", ln.Addr().String())
	}

	errc := make(chan error, len(servers))
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() { // owned by Run: ends when its listener is shut down
			defer wg.Done()
			if err := s.serve(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				errc <- fmt.Errorf("%s: %w", s.name, err)
			}
		}()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.stop(sctx)
	}
	wg.Wait()
	return runErr
}

func newHTTPServer(pod Pod) *http.Server {
	return &http.Server{Handler: Handler(pod), ReadHeaderTimeout: 10 * time.Second}
}

func serverTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s holds no PEM certificate", cfg.ClientCA)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
