package kubelet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

const streamIdleTimeout = 4 * time.Hour

// apiServer is the kubelet API the API server proxies to: container logs,
// exec, port-forward, healthz.
type apiServer struct {
	k   *kubelet
	log *slog.Logger
}

// handler returns the kubelet API routes. Every route but /healthz needs a
// client certificate signed by the ClientCA (checked by the TLS layer).
func (s *apiServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprint(w, "ok") })
	mux.Handle("GET /containerLogs/{ns}/{pod}/{container}", s.authn(s.serveLogs))
	mux.Handle("/exec/{ns}/{pod}/{container}", s.authn(s.serveExec))
	mux.Handle("/exec/{ns}/{pod}/{uid}/{container}", s.authn(s.serveExec))
	mux.Handle("/portForward/{ns}/{pod}", s.authn(s.servePortForward))
	mux.Handle("/portForward/{ns}/{pod}/{uid}", s.authn(s.servePortForward))
	return mux
}

func (s *apiServer) authn(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.k.cfg.ClientCA != "" && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			http.Error(w, "Unauthorized: a client certificate from the cluster CA is required", http.StatusUnauthorized)
			return
		}
		h(w, r)
	})
}

// tlsConfig loads the serving pair and the client CA.
func tlsConfig(cfg *Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.ServingCert, cfg.ServingKey)
	if err != nil {
		return nil, fmt.Errorf("load kubelet serving certificate: %w", err)
	}
	tc := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"}, // SPDY upgrades need HTTP/1.1
	}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s holds no certificate", cfg.ClientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return tc, nil
}

// serve listens on NodeIP:Port until ctx ends.
func (s *apiServer) serve(ctx context.Context) error {
	tc, err := tlsConfig(s.k.cfg)
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(s.k.cfg.NodeIP, strconv.Itoa(s.k.cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen kubelet api %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler(),
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut) // past the deadline, Close ends what is left
		_ = srv.Close()        // hijacked streams
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("kubelet api: %w", err) // it failed on its own before the shutdown
		}
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("kubelet api: %w", err)
	}
}

// findContainer resolves the route's pod and container.
func (s *apiServer) findContainer(ns, pod, container string) (*podWorker, *ctr, error) {
	w := s.k.pods.lookup(ns, pod)
	if w == nil {
		return nil, nil, fmt.Errorf("pod %s/%s is not running on node %s", ns, pod, s.k.cfg.NodeName)
	}
	if container == "" {
		return w, nil, nil
	}
	w.mu.Lock()
	all := append(append([]*ctr(nil), w.ctrs...), w.inits...)
	w.mu.Unlock()
	for _, c := range all {
		if c.spec.Name == container {
			return w, c, nil
		}
	}
	return nil, nil, fmt.Errorf("container %s is not valid for pod %s/%s", container, ns, pod)
}

func (s *apiServer) serveExec(w http.ResponseWriter, r *http.Request) {
	ns, pod, container := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	if _, _, err := s.findContainer(ns, pod, container); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	opts, err := remotecommand.NewOptions(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cmd := r.URL.Query()["command"]
	if len(cmd) == 0 {
		http.Error(w, "no command given", http.StatusBadRequest)
		return
	}
	remotecommand.ServeExec(w, r, &executor{s: s}, ns+"/"+pod, r.PathValue("uid"), container, cmd, opts,
		streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

func (s *apiServer) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("ns"), r.PathValue("pod")
	if _, _, err := s.findContainer(ns, pod, ""); err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, &forwarder{s: s, ns: ns, pod: pod}, ns+"/"+pod, r.PathValue("uid"), opts,
		streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}
