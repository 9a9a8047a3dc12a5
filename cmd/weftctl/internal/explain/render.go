package explain

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints r for a person: the source, then one block per
// destination endpoint with its path and verdict.
func WriteText(w io.Writer, r *Result) error {
	var b strings.Builder
	mesh := func(p Peer) string {
		if p.InMesh {
			return "in the mesh"
		}
		return "NOT in the mesh"
	}
	fmt.Fprintf(&b, "FROM      %s/%s  %s  node %s  %s\n", r.From.Namespace, r.From.Name, r.From.Address, r.From.Node, mesh(r.From))
	fmt.Fprintf(&b, "          identity %s\n", r.From.Identity)
	fmt.Fprintf(&b, "TO        %s", r.To)
	if r.Service != "" {
		fmt.Fprintf(&b, "  (service %s, %d healthy endpoint(s))", r.Service, len(r.Endpoints))
	}
	b.WriteString("\n")
	for _, ep := range r.Endpoints {
		verdict := "ALLOW"
		if !ep.Allowed {
			verdict = "DENY"
		}
		fmt.Fprintf(&b, "\nENDPOINT  %s/%s  %s:%d  node %s  %s\n", ep.Workload.Namespace, ep.Workload.Name, ep.Workload.Address, ep.Port, ep.Workload.Node, mesh(ep.Workload))
		fmt.Fprintf(&b, "          identity %s\n", ep.Workload.Identity)
		fmt.Fprintf(&b, "PATH      %s: %s\n", ep.Path, ep.Via)
		fmt.Fprintf(&b, "POLICY    evaluated for %s\n", ep.Evaluated)
		pol := ep.Policy
		if pol == "" {
			pol = "(no single policy)"
		}
		fmt.Fprintf(&b, "VERDICT   %s  %s: %s\n", verdict, pol, ep.Reason)
		for _, d := range ep.DryRun {
			fmt.Fprintf(&b, "          dry-run match: %s\n", d)
		}
		for _, n := range ep.Notes {
			fmt.Fprintf(&b, "NOTE      %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
