package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/weftmesh/weft/istiod-lite/model"
	"github.com/weftmesh/weft/istiod-lite/xds"
	"google.golang.org/protobuf/encoding/protojson"
)

// monitoringMux serves /ready, /healthz and /metrics.
func monitoringMux(reg *prometheus.Registry, ready func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready: informers syncing", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n")) // a failed write means the prober left
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// debugMux serves the served resources (of types, from src: the model's
// and the waypoint L7 ones), client dumps and pprof. It exposes workload
// and policy data, so it listens on loopback only (reach it with
// port-forward).
func debugMux(m *model.Model, src xds.Source, types []string, srv *xds.Server) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/model", func(w http.ResponseWriter, r *http.Request) {
		out := map[string][]json.RawMessage{}
		for _, t := range types {
			rs := src.All(t)
			slices.SortFunc(rs, func(a, b *model.Resource) int { return strings.Compare(a.Name, b.Name) })
			entries := []json.RawMessage{}
			for _, res := range rs {
				msg, err := res.Decode()
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				body, err := protojson.Marshal(msg)
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				e, _ := json.Marshal(struct {
					Name     string          `json:"name"`
					Aliases  []string        `json:"aliases,omitempty"`
					Version  string          `json:"version"`
					Resource json.RawMessage `json:"resource"`
				}{res.Name, res.Aliases, res.Version, body})
				entries = append(entries, e)
			}
			out[t] = entries
		}
		writeJSON(w, map[string]any{"sizes": m.Sizes(), "resources": out})
	})
	mux.HandleFunc("GET /debug/clients", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"clients":         srv.Clients(r.URL.Query().Get("versions") != "false"),
			"lastConvergence": srv.LastConvergence().String(),
			"time":            time.Now(),
		})
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b.Bytes()) // a failed write means the client left
}

// modelCollector exports model sizes as weft_model_objects{kind}.
type modelCollector struct {
	m    *model.Model
	desc *prometheus.Desc
}

func newModelCollector(m *model.Model) *modelCollector {
	return &modelCollector{m: m, desc: prometheus.NewDesc("weft_model_objects", "Objects held by the ambient model, by kind (inputs and output resources).", []string{"kind"}, nil)}
}

func (c *modelCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *modelCollector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.m.Sizes() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), k)
	}
}
