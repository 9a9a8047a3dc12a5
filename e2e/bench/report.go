package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report is the machine-readable outcome of a run (report.json).
type Report struct {
	Mode     string    `json:"mode"` // "quick" or "full"
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_s"`
	Machine  Machine   `json:"machine"`
	Method   Method    `json:"method"`
	Rows     []Row     `json:"rows"`
	// Profiles are CPU profiles of the proxies under load.
	Profiles []Profile `json:"profiles,omitempty"`
	// Notes are what the run could not measure, and why.
	Notes []string `json:"notes,omitempty"`
}

// Method records how the figures were taken.
type Method struct {
	Reps          int             `json:"reps"`
	WarmupS       float64         `json:"warmup_s"`
	WindowS       float64         `json:"window_s"`
	MaxRate       map[int]float64 `json:"max_rate_rps"` // by connection count
	MaxRateSource string          `json:"max_rate_source"`
	Pinning       string          `json:"pinning"`
	HeldConns     int             `json:"held_conns"`
	ConnWorkers   int             `json:"conn_rate_workers"`
	// Scenarios are the scenarios a filtered run was limited to (none:
	// all of them).
	Scenarios []string `json:"scenarios,omitempty"`
}

// Side is one measured thing over the repetitions.
type Side struct {
	Name string `json:"name"`
	// Median and Spread (max-min) of Values, in the row's unit.
	Median float64   `json:"median"`
	Spread float64   `json:"spread"`
	Values []float64 `json:"values"`
}

// Peer is a published figure of another mesh, on its own hardware.
type Peer struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Source string  `json:"source"`
}

// Row is one metric of one scenario case: the subject beside its baseline.
type Row struct {
	Scenario string `json:"scenario"`
	Case     string `json:"case"`
	Metric   string `json:"metric"`
	Unit     string `json:"unit"`
	// Better is "lower" or "higher".
	Better   string `json:"better"`
	Baseline Side   `json:"baseline"`
	Subject  Side   `json:"subject"`
	// Ratio is Subject.Median/Baseline.Median; Delta their difference.
	Ratio float64 `json:"ratio"`
	Delta float64 `json:"delta"`
	// Spread repeats both sides' spreads: the noise next to the figure.
	Spread struct {
		Baseline float64 `json:"baseline"`
		Subject  float64 `json:"subject"`
	} `json:"spread"`
	Peer *Peer  `json:"peer,omitempty"`
	Note string `json:"note,omitempty"`
}

// newRow builds a row from both sides' per-repetition values.
func newRow(scenario, kase, metric, unit, better, baseName string, base []float64, subjName string, subj []float64) Row {
	r := Row{Scenario: scenario, Case: kase, Metric: metric, Unit: unit, Better: better,
		Baseline: side(baseName, base), Subject: side(subjName, subj)}
	r.Ratio = math.NaN() // a ratio over a difference that can be negative means nothing
	if r.Baseline.Median > 0 && r.Subject.Median >= 0 {
		r.Ratio = ratio(r.Subject.Median, r.Baseline.Median)
	}
	r.Delta = r.Subject.Median - r.Baseline.Median
	r.Spread.Baseline, r.Spread.Subject = r.Baseline.Spread, r.Subject.Spread
	return r
}

// side summarises vs, leaving out runs that measured nothing (NaN).
func side(name string, vs []float64) Side {
	vs = finite(vs)
	return Side{Name: name, Median: median(vs), Spread: spread(vs), Values: vs}
}

// WriteJSON writes the report to dir/report.json.
func (r *Report) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("report dir: %w", err)
	}
	b, err := json.MarshalIndent(sanitize(r), "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode report: %w", err)
	}
	path := filepath.Join(dir, "report.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write report: %w", err)
	}
	return path, nil
}

// ReadReport reads a report.json.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode report %s: %w", path, err)
	}
	return &r, nil
}

// sanitize returns a copy of r whose NaNs are zero, with a note on each
// affected row, since JSON has no NaN.
func sanitize(r *Report) *Report {
	c := *r
	c.Rows = make([]Row, len(r.Rows))
	for i, row := range r.Rows {
		fix := func(f *float64) {
			if math.IsNaN(*f) || math.IsInf(*f, 0) {
				*f = 0
			}
		}
		for _, f := range []*float64{&row.Ratio, &row.Delta, &row.Spread.Baseline, &row.Spread.Subject,
			&row.Baseline.Median, &row.Baseline.Spread, &row.Subject.Median, &row.Subject.Spread} {
			fix(f)
		}
		c.Rows[i] = row
	}
	return &c
}

// Merge adds other's rows and notes to r, for a report whose scenarios ran
// in separate invocations (e.g. --control-plane-only beside --quick). A
// note of r saying a scenario of other was not run is dropped, and a note
// says where the added rows came from.
func (r *Report) Merge(other *Report) {
	added := map[string]bool{}
	for _, row := range other.Rows {
		added[row.Scenario] = true
	}
	mesh := hasRunningMeshRows(other.Rows)
	var notes []string
	for _, n := range r.Notes {
		if strings.HasPrefix(n, "control plane: not run") && added["control-plane"] {
			continue
		}
		if mesh && (strings.HasPrefix(n, "not measured yet:") || strings.HasPrefix(n, "not measured in this run:")) {
			continue
		}
		notes = append(notes, n)
	}
	var names []string
	for s := range added {
		names = append(names, s)
	}
	slices.Sort(names)
	mode := other.Mode
	if len(names) == 1 && names[0] == "control-plane" && !mesh {
		mode = "control-plane-only"
	}
	r.Notes = append(notes, fmt.Sprintf("%s rows from a separate %s run of %s (%.0f s)", strings.Join(names, ", "), mode,
		other.Started.Format("2006-01-02 15:04 UTC"), other.Duration))
	scale := hasScaleRows(r.Rows)
	for _, n := range other.Notes {
		if scale && strings.HasPrefix(n, "control plane: not run") {
			continue // r has the scale rows other did not run
		}
		r.Notes = append(r.Notes, n)
	}
	r.Rows = append(r.Rows, other.Rows...)
}

// hasRunningMeshRows reports whether rows hold the control-plane rows
// measured on the running mesh (cp-propagation, cp-enroll, cp-churn).
func hasRunningMeshRows(rows []Row) bool {
	for _, r := range rows {
		if r.Scenario == "control-plane" && (strings.HasPrefix(r.Case, "running mesh") || strings.HasSuffix(r.Case, "`kubectl label ns`")) {
			return true
		}
	}
	return false
}

// hasScaleRows reports whether rows hold BenchmarkScale's rows.
func hasScaleRows(rows []Row) bool {
	for _, r := range rows {
		if r.Scenario == "control-plane" && !hasRunningMeshRows([]Row{r}) {
			return true
		}
	}
	return false
}
