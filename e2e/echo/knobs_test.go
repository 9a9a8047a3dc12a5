package echo

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// runSummary runs the client with Summary and decodes its output.
func runSummary(t *testing.T, cfg ClientConfig) Summary {
	t.Helper()
	cfg.Summary = true
	var out bytes.Buffer
	if err := RunClient(context.Background(), cfg, &out); err != nil {
		t.Fatalf("RunClient: %v", err)
	}
	var s Summary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("parse %q: %v", out.String(), err)
	}
	return s
}

func TestFailPercentage(t *testing.T) {
	httpAddr, _, _ := startServer(t)
	for _, tc := range []struct {
		query    string
		min, max int // of 200 calls answered 503 (or failstatus)
		code     string
	}{
		{"fail=0", 0, 0, "503"},
		{"fail=100", 200, 200, "503"},
		{"fail=100&failstatus=500", 200, 200, "500"},
		{"fail=50", 60, 140, "503"}, // binomial(200, .5): ±5.6 sigma
	} {
		t.Run(tc.query, func(t *testing.T) {
			s := runSummary(t, ClientConfig{URL: "http://" + httpAddr + "/f?" + tc.query, Count: 200, Concurrency: 4})
			if s.Calls != 200 || s.Errors != 0 {
				t.Fatalf("summary %+v", s)
			}
			if n := s.Status[tc.code]; n < tc.min || n > tc.max {
				t.Errorf("%d of 200 answered %s, want %d..%d (%+v)", n, tc.code, tc.min, tc.max, s.Status)
			}
			if s.Status[tc.code]+s.Status["200"] != 200 {
				t.Errorf("other codes: %+v", s.Status)
			}
		})
	}
	s := runSummary(t, ClientConfig{URL: "http://" + httpAddr + "/f?fail=150"})
	if s.Status["400"] != 1 {
		t.Errorf("fail=150: %+v, want a 400", s.Status)
	}
}

func TestSummaryCountsPodsVersionsAndErrors(t *testing.T) {
	httpAddr, _, _ := startServer(t)
	t.Setenv(EnvVersion, "v2")
	if v := PodFromEnv().Version; v != "v2" {
		t.Errorf("PodFromEnv().Version = %q", v)
	}
	s := runSummary(t, ClientConfig{URL: "http://" + httpAddr + "/", Count: 10, Concurrency: 3})
	if s.Calls != 10 || s.Pods[testPod.Name] != 10 || s.Status["200"] != 10 || s.P50Millis <= 0 || s.MaxMillis < s.P50Millis {
		t.Errorf("summary %+v", s)
	}
	// A refused port: every call fails, the run does not.
	s = runSummary(t, ClientConfig{URL: "http://" + freeAddr(t) + "/", Count: 3})
	if s.Calls != 3 || s.Errors != 3 || s.FirstError == "" {
		t.Errorf("summary of refused calls %+v", s)
	}
	// Without Summary the first error ends the run.
	if err := RunClient(context.Background(), ClientConfig{URL: "http://" + freeAddr(t) + "/", Count: 3, Concurrency: 2}, &bytes.Buffer{}); err == nil {
		t.Error("RunClient to a refused port succeeded")
	}
}

func TestResultHasHeadersAndTiming(t *testing.T) {
	httpAddr, _, _ := startServer(t)
	var out bytes.Buffer
	if err := RunClient(context.Background(), ClientConfig{URL: "http://" + httpAddr + "/d?delay=50ms"}, &out); err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(res.Headers["X-Echo-Pod"], ","); got != testPod.Name {
		t.Errorf("X-Echo-Pod response header %q", got)
	}
	if res.Millis < 50 {
		t.Errorf("a 50ms delay took %vms", res.Millis)
	}
}

func TestGRPCStream(t *testing.T) {
	_, _, grpcAddr := startServer(t)
	var out bytes.Buffer
	if err := RunClient(context.Background(), ClientConfig{GRPCAddr: grpcAddr, GRPCStream: 7}, &out); err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Proto != "grpc-stream" || res.Messages != 7 || res.Reply == nil || res.Reply.Method != GRPCStreamMethod || res.Reply.Pod.Name != testPod.Name {
		t.Errorf("stream result %s", out.String())
	}
}
