package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Dump produces one section of /config_dump; it must be safe for
// concurrent use and return a JSON-encodable value.
type Dump func() any

// Levels changes and reports log levels; pkg/log's Root implements it.
type Levels interface {
	SetLevel(component, level string) error
	Levels() map[string]string
}

// Config configures the admin handler.
type Config struct {
	// Name is the proxy's name ("ztunnel", "waypoint") on the index page.
	Name string
	// Sections are the /config_dump sections by key (workloads, services,
	// policies, certificates, workloadState, connections, config).
	Sections map[string]Dump
	// Levels backs /logging; nil disables it.
	Levels Levels
}

// Handler returns the admin server's handler. It must only be served on
// localhost: it exposes configuration and profiling.
func Handler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/config_dump", func(w http.ResponseWriter, r *http.Request) {
		out := make(map[string]any, len(cfg.Sections))
		for k, d := range cfg.Sections {
			out[k] = d()
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("/logging", func(w http.ResponseWriter, r *http.Request) { logging(w, r, cfg.Levels) })
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintln(w, cfg.Name+" admin: /config_dump /logging[?level=[component:]level] /debug/pprof/")
	})
	return mux
}

// logging reports levels, or with ?level=L (or component:L, comma
// separated) changes them, as Istio's ztunnel admin does.
func logging(w http.ResponseWriter, r *http.Request, lv Levels) {
	if lv == nil {
		http.Error(w, "log levels cannot be changed", http.StatusNotImplemented)
		return
	}
	if spec := r.URL.Query().Get("level"); spec != "" {
		for _, part := range strings.Split(spec, ",") {
			comp, level, ok := strings.Cut(part, ":")
			if !ok {
				comp, level = "", part
			}
			if err := lv.SetLevel(comp, level); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
	}
	levels := lv.Levels()
	keys := make([]string, 0, len(levels))
	for k := range levels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]any{"default": levels[""], "components": map[string]string{}}
	for _, k := range keys {
		if k != "" {
			out["components"].(map[string]string)[k] = levels[k]
		}
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// Readiness serves /healthz/ready: 200 once ready returns nil, else
// 503 with the reason.
func Readiness(ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz/ready", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ready")
	})
	return mux
}

// Metrics serves reg on /metrics and /stats/prometheus.
func Metrics(reg *prometheus.Registry) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	mux.Handle("/stats/prometheus", h)
	return mux
}
