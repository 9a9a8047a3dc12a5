package diagnose

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weftmesh/weft/cmd/weftctl/internal/printer"
)

func section(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%s\n%s\n", title, strings.Repeat("-", len(title)))
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// WriteText prints the report in sections, problems first.
func WriteText(w io.Writer, r Report) error {
	fmt.Fprintf(w, "Node %s (ready: %s)\n", r.Node, yes(r.NodeReady))
	if len(r.Problems) == 0 {
		fmt.Fprintln(w, "No problems found.")
	} else {
		fmt.Fprintf(w, "%d problem(s):\n", len(r.Problems))
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  × %s\n", p)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  ‼ %s\n", n)
	}

	section(w, "Components")
	t := printer.TableData{Header: []string{"COMPONENT", "POD", "READY", "RESTARTS", "STATE"}}
	for _, c := range []struct {
		name string
		c    Component
	}{{"ztunnel", r.Ztunnel}, {"weft-cni-agent", r.Agent}} {
		t.Rows = append(t.Rows, []string{c.name, c.c.Pod, yes(c.c.Ready), strconv.Itoa(int(c.c.Restarts)), c.c.State})
	}
	_ = printer.WriteTable(w, t, false)

	section(w, "xDS (ztunnel <- istiod-lite)")
	fmt.Fprintf(w, "connected: %s\n", yes(r.XDSConnected))
	if len(r.XDS) > 0 {
		t = printer.TableData{Header: []string{"TYPE", "LAST ACKED VERSION", "RESOURCES", "ACKS", "NACKS", "LAST NACK"}}
		for _, x := range r.XDS {
			t.Rows = append(t.Rows, []string{x.Type, x.Version, strconv.Itoa(x.Resources), strconv.FormatUint(x.ACKs, 10), strconv.FormatUint(x.NACKs, 10), x.LastNACK})
		}
		_ = printer.WriteTable(w, t, false)
	}

	section(w, "Pods (Kubernetes vs ztunnel's ZDS view)")
	fmt.Fprintf(w, "redirect rules: %s\n", r.RedirectRules)
	if len(r.Pods) > 0 {
		t = printer.TableData{Header: []string{"POD", "IN K8S", "SHOULD MESH", "REDIRECTION", "RULES", "IN ZTUNNEL", "PROBLEM"}}
		for _, p := range r.Pods {
			red, rules := p.Redirection, p.Rules
			if red == "" {
				red = "-"
			}
			if rules == "" {
				rules = "-"
			}
			t.Rows = append(t.Rows, []string{p.Pod, yes(p.Kubernetes), yes(p.ShouldMesh), red, rules, yes(p.Ztunnel), p.Problem})
		}
		_ = printer.WriteTable(w, t, false)
	}

	section(w, "Certificates")
	if len(r.Certificates) > 0 {
		t = printer.TableData{Header: []string{"IDENTITY", "STATUS", "VALID", "NOT AFTER", "LAST ERROR"}}
		for _, c := range r.Certificates {
			na := ""
			if !c.NotAfter.IsZero() {
				na = c.NotAfter.UTC().Format(time.RFC3339)
			}
			t.Rows = append(t.Rows, []string{c.Identity, c.State, yes(c.Valid), na, c.LastError})
		}
		_ = printer.WriteTable(w, t, false)
	}

	section(w, "Recent connection failures (ztunnel access log)")
	if len(r.Failures) == 0 {
		fmt.Fprintln(w, "none in the logs read")
	}
	for _, g := range r.Failures {
		fmt.Fprintf(w, "%s: %d\n", g.Reason, g.Count)
		keys := make([]string, 0, len(g.Detail))
		for k := range g.Detail {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if g.Detail[keys[i]] != g.Detail[keys[j]] {
				return g.Detail[keys[i]] > g.Detail[keys[j]]
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			fmt.Fprintf(w, "  %4d  %s\n", g.Detail[k], k)
		}
	}
	if len(r.FailedByFlag) > 0 {
		flags := make([]string, 0, len(r.FailedByFlag))
		for f := range r.FailedByFlag {
			flags = append(flags, f)
		}
		sort.Strings(flags)
		var parts []string
		for _, f := range flags {
			parts = append(parts, fmt.Sprintf("%s=%g", f, r.FailedByFlag[f]))
		}
		fmt.Fprintf(w, "since ztunnel start (istio_tcp_connections_failed_total by response_flags): %s\n", strings.Join(parts, " "))
	}

	section(w, "Top talkers (outbound, from the access log)")
	if len(r.TopTalkers) == 0 {
		fmt.Fprintln(w, "none in the logs read")
		return nil
	}
	t = printer.TableData{Header: []string{"SOURCE", "DESTINATION", "CONNECTIONS", "BYTES"}}
	for _, tk := range r.TopTalkers {
		t.Rows = append(t.Rows, []string{tk.Source, tk.Destination, strconv.Itoa(tk.Connections), strconv.FormatInt(tk.Bytes, 10)})
	}
	return printer.WriteTable(w, t, false)
}
