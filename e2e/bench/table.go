package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable writes the report as aligned text tables, one per scenario.
func WriteTable(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "Weft whole-mesh benchmark (%s mode): %d CPUs (%s), load %s → %s, %d repetitions, median ± spread (max-min)\n",
		r.Mode, r.Machine.CPUs, r.Machine.CPUModel, r.Machine.LoadStart, r.Machine.LoadEnd, r.Method.Reps)
	scenario := ""
	var tw *tabwriter.Writer
	flush := func() {
		if tw != nil {
			_ = tw.Flush()
		}
	}
	for _, row := range orderedRows(r) {
		if row.Scenario != scenario {
			flush()
			scenario = row.Scenario
			fmt.Fprintf(w, "\n== %s\n", scenario)
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "case\tmetric\tbaseline\tsubject\tratio\tdelta\tnote")
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s %s\t%s %s\t%s\t%s\t%s\n", row.Case, row.Metric, row.Unit,
			row.Baseline.Name, medSpread(row.Baseline), row.Subject.Name, medSpread(row.Subject),
			fmtRatio(row.Ratio), fmtDelta(row), row.Note)
	}
	flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func medSpread(s Side) string {
	if len(s.Values) == 0 {
		return "—"
	}
	return fmtVal(s.Median) + " ±" + fmtVal(s.Spread)
}

// fmtVal prints about three significant digits.
func fmtVal(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a == 0:
		return "0"
	case a < 0.01:
		return fmt.Sprintf("%.4f", v)
	case a < 10:
		return fmt.Sprintf("%.3f", v)
	case a < 1000:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtSigned(v float64) string {
	s := fmtVal(v)
	if v > 0 && !strings.HasPrefix(s, "+") {
		return "+" + s
	}
	return s
}

// fmtDelta prints the row's delta, n/a when a side measured nothing.
func fmtDelta(r Row) string {
	if len(r.Baseline.Values) == 0 || len(r.Subject.Values) == 0 {
		return "n/a"
	}
	return fmtSigned(r.Delta)
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || v == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2fx", v)
}

// scenarioOrder is the order reports present scenarios in.
var scenarioOrder = []string{"latency", "throughput", "connection-rate", "dataplane-cost", "control-plane"}

// orderedRows returns r's rows grouped by scenario in scenarioOrder (others
// last), keeping their order within a scenario.
func orderedRows(r *Report) []Row {
	rank := func(s string) int {
		if i := slices.Index(scenarioOrder, s); i >= 0 {
			return i
		}
		return len(scenarioOrder)
	}
	rows := slices.Clone(r.Rows)
	slices.SortStableFunc(rows, func(a, b Row) int { return rank(a.Scenario) - rank(b.Scenario) })
	return rows
}
