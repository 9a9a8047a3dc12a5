package diagnose

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Failure reasons, as grouped in the report.
const (
	ReasonPolicy     = "policy denied"
	ReasonNoEndpoint = "no endpoint"
	ReasonTLS        = "TLS error"
	ReasonRefused    = "upstream refused"
	ReasonOther      = "other"
)

// FailureGroup is the failed connections of one reason.
type FailureGroup struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
	// Detail counts each distinct detail: the deciding policy for policy
	// denials, else the source -> destination pair and error.
	Detail map[string]int `json:"detail"`
}

// Talker is traffic between a pair of workloads.
type Talker struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Connections int    `json:"connections"`
	Bytes       int64  `json:"bytes"`
}

type accessLine struct {
	Msg string `json:"msg"`
	Src struct {
		Addr, Workload, Namespace string
	} `json:"src"`
	Dst struct {
		Addr, Service, Workload, Namespace string
	} `json:"dst"`
	Direction string `json:"direction"`
	Sent      int64  `json:"bytes_sent"`
	Recv      int64  `json:"bytes_recv"`
	Error     string `json:"error"`
}

func who(ns, name, addr string) string {
	if name != "" {
		return ns + "/" + name
	}
	if addr != "" {
		return addr
	}
	return "unknown"
}

// classify names the reason of an access-log error and its detail.
func classify(errText string) (reason, detail string) {
	errText = strings.TrimSpace(errText)
	e := strings.ToLower(errText)
	switch {
	case strings.Contains(e, "denied"):
		if i := strings.Index(errText, "by policy "); i >= 0 {
			return ReasonPolicy, strings.TrimSpace(errText[i+len("by policy "):])
		}
		return ReasonPolicy, errText
	case strings.Contains(e, "no healthy") || strings.Contains(e, "no endpoint") || strings.Contains(e, "no configuration") || strings.Contains(e, "no route"):
		return ReasonNoEndpoint, errText
	case strings.Contains(e, "tls") || strings.Contains(e, "x509") || strings.Contains(e, "certificate") || strings.Contains(e, "identity"):
		return ReasonTLS, errText
	case strings.Contains(e, "refused") || strings.Contains(e, "reset by peer"):
		return ReasonRefused, errText
	}
	return ReasonOther, errText
}

// FromAccessLog groups failed connections and ranks talkers from ztunnel's
// JSON access log ("connection complete" records); other lines are skipped.
func FromAccessLog(logs []byte, top int) ([]FailureGroup, []Talker) {
	groups := map[string]*FailureGroup{}
	talk := map[[2]string]*Talker{}
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l accessLine
		if json.Unmarshal(sc.Bytes(), &l) != nil || l.Msg != "connection complete" {
			continue
		}
		src := who(l.Src.Namespace, l.Src.Workload, l.Src.Addr)
		dst := who(l.Dst.Namespace, l.Dst.Workload, l.Dst.Addr)
		if l.Dst.Workload == "" && l.Dst.Service != "" {
			dst = l.Dst.Service
		}
		if l.Error != "" {
			reason, detail := classify(l.Error)
			if reason != ReasonPolicy {
				detail = fmt.Sprintf("%s -> %s: %s", src, dst, detail)
			} else {
				detail = fmt.Sprintf("%s (%s -> %s)", detail, src, dst)
			}
			g := groups[reason]
			if g == nil {
				g = &FailureGroup{Reason: reason, Detail: map[string]int{}}
				groups[reason] = g
			}
			g.Count++
			g.Detail[detail]++
			continue
		}
		if l.Direction == "inbound" {
			continue // count each connection once, at its source when possible
		}
		k := [2]string{src, dst}
		t := talk[k]
		if t == nil {
			t = &Talker{Source: src, Destination: dst}
			talk[k] = t
		}
		t.Connections++
		t.Bytes += l.Sent + l.Recv
	}
	var fg []FailureGroup
	for _, g := range groups {
		fg = append(fg, *g)
	}
	sort.Slice(fg, func(i, j int) bool {
		if fg[i].Count != fg[j].Count {
			return fg[i].Count > fg[j].Count
		}
		return fg[i].Reason < fg[j].Reason
	})
	var ts []Talker
	for _, t := range talk {
		ts = append(ts, *t)
	}
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Bytes != ts[j].Bytes {
			return ts[i].Bytes > ts[j].Bytes
		}
		return ts[i].Source+ts[i].Destination < ts[j].Source+ts[j].Destination
	})
	if len(ts) > top {
		ts = ts[:top]
	}
	return fg, ts
}

// FailedByFlag sums istio_tcp_connections_failed_total by response_flags
// from a Prometheus text exposition.
func FailedByFlag(metrics []byte) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(metrics))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := map[string]float64{}
	f := fams["istio_tcp_connections_failed_total"]
	if f == nil {
		return out, nil
	}
	for _, m := range f.GetMetric() {
		flag := "-"
		for _, l := range m.GetLabel() {
			if l.GetName() == "response_flags" {
				flag = l.GetValue()
			}
		}
		out[flag] += m.GetCounter().GetValue()
	}
	return out, nil
}
