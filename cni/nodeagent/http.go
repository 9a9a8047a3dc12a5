package nodeagent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpHandler serves /healthz (the process is up), /readyz (Ready) and
// /metrics.
func (a *Agent) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := a.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.registry, promhttp.HandlerOpts{}))
	return mux
}

// adminHandler serves GET /debug/pods: the held pods with a live check of
// their redirect rules (PodsReport, JSON).
func (a *Agent) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pods", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.podsReport())
	})
	return mux
}

func (a *Agent) serveAdmin(ctx context.Context) error {
	l, err := net.Listen("tcp", a.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.AdminAddr, err)
	}
	a.log.Info("admin endpoint listening", "addr", l.Addr().String())
	return serveUntil(ctx, &http.Server{Handler: a.adminHandler(), ReadHeaderTimeout: 5 * time.Second}, l)
}

func (a *Agent) serveHTTP(ctx context.Context) error {
	l, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.HTTPAddr, err)
	}
	a.log.Info("health and metrics listening", "addr", l.Addr().String())
	return serveUntil(ctx, &http.Server{Handler: a.httpHandler(), ReadHeaderTimeout: 5 * time.Second}, l)
}
