package agentapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func FuzzPodRequest(f *testing.F) {
	seed := func(r PodRequest) []byte {
		b, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed(PodRequest{ContainerID: "c1", Netns: "/var/run/netns/cni-1", IfName: "eth0", PodName: "web", PodNamespace: "demo", PodUID: "u1", IPs: []string{"10.0.0.2", "fd00::2"}}))
	f.Add(seed(PodRequest{ContainerID: "c1", PodName: "web"}))
	f.Add(seed(PodRequest{PodName: "web", PodNamespace: "demo"}))
	f.Add([]byte(`{"containerID":"c","podName":"p","podNamespace":"n","ips":[null,"x"]}`))
	f.Add([]byte(`{"containerID":"c","podName":"p","podNamespace":"n"} trailing`))
	f.Add([]byte(`{"containerID":"c","podName":"p","podNamespace":"n","podName":""}`))
	f.Add([]byte(`{"containerID":"\ud800","podName":"\u0000","podNamespace":"\xff"}`))
	f.Add([]byte(`{"ips":{"a":1}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Add([]byte(`{"containerID":"c","podName":"p","podNamespace":"n","ips":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, ok := decode(body)
		if !ok {
			return // not JSON of the right shape: the agent answers 400 with the decoder's error
		}
		err := req.Validate()
		complete := req.PodName != "" && req.PodNamespace != "" && req.ContainerID != ""
		if complete != (err == nil) {
			t.Fatalf("request %+v: Validate = %v", req, err)
		}
		if err != nil {
			msg := err.Error()
			switch {
			case req.PodName == "" || req.PodNamespace == "":
				if !strings.Contains(msg, "pod name and namespace") {
					t.Fatalf("missing pod name/namespace refused with %q", msg)
				}
			case !strings.Contains(msg, "container id"):
				t.Fatalf("missing container id refused with %q", msg)
			}
			return
		}
		again, ok := decode(mustMarshal(t, req))
		if !ok {
			t.Fatalf("re-encoded request %+v does not decode", req)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("re-encoded accepted request refused: %v", err)
		}
		// An empty list is left out when encoded ("ips" is omitempty), so
		// it comes back nil: the same request.
		if diff := cmp.Diff(req, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed the request (-first +second):\n%s", diff)
		}
	})
}

// decode reads a request body the way the agent's handlers do: the first
// JSON value of the body.
func decode(body []byte) (PodRequest, bool) {
	var req PodRequest
	err := json.NewDecoder(bytes.NewReader(body)).Decode(&req)
	return req, err == nil
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %+v: %v", v, err)
	}
	return b
}

// FuzzEnrollment feeds arbitrary enrollment files to ReadEnrollment, which
// the plugin consults while the agent is down. A file it cannot parse is
// an error naming the file (the plugin then fails closed); a file it
// parses, written back with WriteEnrollment and read again, lists the same
// namespaces, sorted and without duplicates, and answers
// NamespaceEnrolled the same for each.
func FuzzEnrollment(f *testing.F) {
	f.Add([]byte(`{"namespaces":["demo","other"],"updated":"2026-01-02T03:04:05Z"}`), "demo")
	f.Add([]byte(`{"namespaces":["b","a","b",""],"updated":"2026-01-02T03:04:05.123456789+02:00"}`), "")
	f.Add([]byte(`{"namespaces":null}`), "x")
	f.Add([]byte(`{"namespaces":[1]}`), "1")
	f.Add([]byte(`{"updated":"yesterday"}`), "")
	f.Add([]byte("\x00"), "")
	f.Fuzz(func(t *testing.T, content []byte, probe string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "enrollment.json")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := ReadEnrollment(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("parse error %q does not name the file", err)
			}
			return
		}
		// A time JSON can hold but RFC 3339 cannot (year outside 0-9999)
		// cannot be written back; that is the writer's refusal, not a
		// reader's bug.
		if y := e.Updated.Year(); y < 0 || y > 9999 {
			return
		}
		out := filepath.Join(dir, "again.json")
		if err := WriteEnrollment(out, e); err != nil {
			t.Fatalf("write back: %v", err)
		}
		back, err := ReadEnrollment(out)
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		want := slices.Compact(slices.Sorted(slices.Values(e.Namespaces)))
		if want == nil {
			want = []string{}
		}
		if diff := cmp.Diff(want, back.Namespaces); diff != "" {
			t.Fatalf("namespaces after write and read (-want +got):\n%s", diff)
		}
		if !back.Updated.Equal(e.Updated) {
			t.Fatalf("updated %v, read back %v", e.Updated, back.Updated)
		}
		for _, ns := range append(slices.Clone(e.Namespaces), probe) {
			if e.NamespaceEnrolled(ns) != back.NamespaceEnrolled(ns) {
				t.Fatalf("NamespaceEnrolled(%q) changed by the round trip", ns)
			}
		}
	})
}

// FuzzClientResponse serves arbitrary answers (status, body) to the
// plugin's client. A 2xx answer is either decoded into exactly what the
// body says or refused with a decode error; any other status is always an
// error (the plugin never mistakes a refusal for an enrollment), carrying
// the agent's message when the body has one.
func FuzzClientResponse(f *testing.F) {
	f.Add(200, []byte(`{"enrolled":true,"message":"capture installed"}`))
	f.Add(200, []byte(`{"enrolled":false}`))
	f.Add(200, []byte(`{"enrolled":"yes"}`))
	f.Add(200, []byte(``))
	f.Add(204, []byte(`{}`))
	f.Add(503, []byte(`{"error":"pod should be in the mesh"}`))
	f.Add(400, []byte(`{"enrolled":true}`))
	f.Add(409, []byte(`not json`))
	f.Add(302, []byte(`{"error":""}`))

	var (
		status int
		body   []byte
	)
	sock := filepath.Join(f.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		f.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	f.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.Errorf("serve: %v", err)
		}
	})
	c := NewClient(sock)
	req := PodRequest{ContainerID: "c1", PodName: "web", PodNamespace: "demo"}

	f.Fuzz(func(t *testing.T, code int, b []byte) {
		if code < 200 || code > 599 || (code >= 300 && code < 400) || code == http.StatusNoContent || code == http.StatusNotModified {
			// net/http's own client handles redirects and bodiless
			// statuses; only real answers reach the decoding.
			return
		}
		status, body = code, b
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Add(ctx, req)
		if code/100 != 2 {
			if err == nil {
				t.Fatalf("status %d answered %+v without error", code, resp)
			}
			var e ErrorResponse
			if json.Unmarshal(b, &e) == nil && e.Error != "" && !strings.Contains(err.Error(), e.Error) {
				t.Fatalf("status %d: error %q lost the agent's message %q", code, err, e.Error)
			}
			return
		}
		var want AddResponse
		if werr := json.Unmarshal(b, &want); werr != nil {
			if err == nil {
				t.Fatalf("undecodable body %q accepted as %+v", b, resp)
			}
			if !strings.Contains(err.Error(), "decode agent response") {
				t.Fatalf("decode failure reported as %q", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("valid answer %q refused: %v", b, err)
		}
		if diff := cmp.Diff(&want, resp); diff != "" {
			t.Fatalf("decoded answer (-want +got):\n%s", diff)
		}
	})
}
