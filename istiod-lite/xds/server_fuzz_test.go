package xds

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/weftmesh/weft/istiod-lite/model"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fuzzUnserved is a type URL the server does not serve.
const fuzzUnserved = "type.googleapis.com/envoy.config.cluster.v3.Cluster"

// fuzzScript turns fuzzer bytes into a client's requests. Each request
// takes: a type byte (served, the other served type, unserved, empty), a
// flags byte (node, nonce, error_detail, initial versions), then up to 3
// subscribed, 3 unsubscribed and 3 initial-version names, each a byte
// picking from the model's names and aliases, "*", and unknown names, or
// a string taken from the input.
type fuzzScript struct {
	b     []byte
	other []string // nonces of the other client, to replay
}

func (s *fuzzScript) byte() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

var fuzzNames = []string{
	uid(0), uid(1), uid(2), "/10.0.0.1", "/10.0.0.2", "/10.0.0.3", "*", "/10.0.0.99",
	"Kubernetes//Pod/ns/p9", "", "ns/p0", "Kubernetes//Pod/ns/p0/", "\x00", strings.Repeat("n", 300),
}

func (s *fuzzScript) name() string {
	c := s.byte()
	if int(c) < len(fuzzNames)*16 {
		return fuzzNames[int(c)%len(fuzzNames)]
	}
	n := min(int(c-byte(len(fuzzNames)*16)), len(s.b))
	out := string(s.b[:n])
	s.b = s.b[n:]
	return out
}

// next returns the next request, given the nonces this client has been
// sent so far; false when the script is done.
func (s *fuzzScript) next(sent []string) (*discoveryv3.DeltaDiscoveryRequest, bool) {
	if len(s.b) == 0 {
		return nil, false
	}
	typ, flags := s.byte(), s.byte()
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: []string{model.AddressType, model.AuthorizationType, fuzzUnserved, ""}[typ%4]}
	if flags&1 != 0 {
		req.Node = &corev3.Node{Id: "ztunnel~10.0.0.1~b.istio-system~cluster.local"}
	}
	switch (flags >> 1) & 3 {
	case 1:
		// Always take the byte, so a replay reads the same requests
		// whatever the responses were.
		if i := int(s.byte()); len(sent) > 0 {
			req.ResponseNonce = sent[i%len(sent)]
		} else {
			req.ResponseNonce = "c1-1"
		}
	case 2:
		if i := int(s.byte()); len(s.other) > 0 {
			req.ResponseNonce = s.other[i%len(s.other)]
		}
	case 3:
		req.ResponseNonce = s.name()
	}
	if flags&8 != 0 {
		req.ErrorDetail = &statuspb.Status{Code: 3, Message: "rejected: " + s.name()}
	}
	for range int(flags>>4) & 3 {
		req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, s.name())
	}
	for range int(flags>>6) & 3 {
		req.ResourceNamesUnsubscribe = append(req.ResourceNamesUnsubscribe, s.name())
	}
	if typ&4 != 0 {
		req.InitialResourceVersions = map[string]string{}
		for range int(typ>>3) & 3 {
			req.InitialResourceVersions[s.name()] = s.name()
		}
	}
	return req, true
}

func fuzzModel() *model.Model {
	m := model.New(model.Config{}, slog.New(slog.DiscardHandler))
	m.UpsertNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns", Labels: map[string]string{model.LabelDataplaneMode: model.DataplaneModeAmbient}}})
	for i := range 3 {
		m.UpsertPod(pod(i, true))
	}
	return m
}

// interest is what a client has ever asked for, per type: names it
// subscribed to or claimed to hold, and whether it ever had a wildcard.
type interest struct {
	wildcard bool
	names    map[string]bool // subscribed (names or aliases)
	known    map[string]bool // subscribed, claimed in initial versions, or sent
	asked    bool            // any request of the type
}

type interests map[string]*interest

func (in interests) note(req *discoveryv3.DeltaDiscoveryRequest) {
	t := req.GetTypeUrl()
	i := in[t]
	if i == nil {
		i = &interest{names: map[string]bool{}, known: map[string]bool{}}
		in[t] = i
		if len(req.GetResourceNamesSubscribe()) == 0 {
			i.wildcard = true
		}
	}
	i.asked = true
	for _, n := range req.GetResourceNamesSubscribe() {
		if n == "*" {
			i.wildcard = true
		}
		i.names[n], i.known[n] = true, true
	}
	for n := range req.GetInitialResourceVersions() {
		i.known[n] = true
	}
}

// check asserts a response to the client only carries what it asked for.
func (in interests) check(t *testing.T, connID string, resp *discoveryv3.DeltaDiscoveryResponse) {
	t.Helper()
	i := in[resp.GetTypeUrl()]
	if i == nil || !i.asked {
		t.Fatalf("response of type %q the client never asked for", resp.GetTypeUrl())
	}
	if resp.GetTypeUrl() != model.AddressType && resp.GetTypeUrl() != model.AuthorizationType {
		t.Fatalf("response of unserved type %q", resp.GetTypeUrl())
	}
	if !strings.HasPrefix(resp.GetNonce(), connID+"-") {
		t.Fatalf("nonce %q not of connection %s", resp.GetNonce(), connID)
	}
	for _, r := range resp.GetResources() {
		ok := i.wildcard || i.names[r.GetName()]
		for _, a := range r.GetAliases() {
			ok = ok || i.names[a]
		}
		if !ok {
			t.Fatalf("sent %s (aliases %v), which the client never subscribed to (subscribed %v)", r.GetName(), r.GetAliases(), slices.Sorted(maps.Keys(i.names)))
		}
		i.known[r.GetName()] = true
	}
	for _, n := range resp.GetRemovedResources() {
		if !i.known[n] {
			t.Fatalf("removal of %q, which the client never subscribed to, held or was sent", n)
		}
	}
}

// snapshot is a client's server-side state, for comparisons.
func snapshot(s *Server, id string) (ClientStatus, bool) {
	for _, c := range s.Clients(true) {
		if c.ID == id {
			return c, true
		}
	}
	return ClientStatus{}, false
}

// FuzzDeltaRequests runs scripted client requests (type URLs served and
// not, subscriptions and unsubscriptions by name, alias and wildcard,
// nonces of its own, of another client and made up, error_detail,
// initial_resource_versions) against the server, next to another client
// that subscribed to one workload by name.
//
// Through the handler directly, request by request: a NACK changes nothing
// but the NACK count and last error (the client keeps its last good state
// and is not pushed anything for it), and nothing the fuzzed client does
// changes the other client's state or owes it a response.
//
// Through DeltaAggregatedResources with an in-memory stream: every response
// is of a served type the client asked for, carries only resources it
// subscribed to (by name, alias or wildcard), removes only names it knew,
// carries its own connection's nonce, and the stream ends cleanly. The
// state-of-the-world stream (DiscoveryRequest) is refused as unimplemented.
func FuzzDeltaRequests(f *testing.F) {
	f.Add([]byte{0, 1})                                    // address wildcard with a node
	f.Add([]byte{0, 0x11, 0, 0, 0x02, 0, 0x08 | 0x02, 0})  // subscribe uid(0), ACK, NACK
	f.Add([]byte{0, 0x21, 3, 4, 0, 0x40, 3})               // subscribe two aliases, unsubscribe one
	f.Add([]byte{0, 0x11, 6, 0, 0x40, 6})                  // wildcard by "*", then unsubscribe "*"
	f.Add([]byte{4 | 8, 0x11, 1, 0, 9, 0, 0x08 | 0x06, 0}) // initial versions, a replayed nonce with error
	f.Add([]byte{2, 0x31, 0, 1, 2, 3, 0, 0x04, 0})         // unserved type, then the other client's nonce
	f.Add([]byte{1, 0x01, 0, 0x3e, 255, 'a', 'b'})         // authorization, a made-up nonce
	f.Add([]byte{0, 0x11, 230, 'x', 'y', 'z'})             // a name from the input

	f.Fuzz(func(t *testing.T, script []byte) {
		fuzzDirect(t, script)
		fuzzStream(t, script)
	})
}

// fuzzDirect drives handle and build of two connections synchronously.
func fuzzDirect(t *testing.T, script []byte) {
	srv := New(fuzzModel(), Config{})
	a := newConn(srv, "c1", "", "", 0)
	b := newConn(srv, "c2", "", "", 0)
	srv.conns[a], srv.conns[b] = struct{}{}, struct{}{}
	a.handle(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: model.AddressType, Node: &corev3.Node{Id: "a"}, ResourceNamesSubscribe: []string{uid(0)}})
	var aNonces []string
	for _, typ := range srv.cfg.Types {
		if r, _ := a.build(typ); r != nil {
			aNonces = append(aNonces, r.GetNonce())
			if len(r.Resources) != 1 || r.Resources[0].GetName() != uid(0) {
				t.Fatalf("other client's first response: %v", r)
			}
		}
	}
	beforeA, _ := snapshot(srv, "c1")

	sc := &fuzzScript{b: script, other: aNonces}
	in := interests{}
	var sent []string
	for {
		req, ok := sc.next(sent)
		if !ok {
			break
		}
		before, _ := snapshot(srv, "c2")
		_, existed := before.Types[req.GetTypeUrl()]
		b.handle(req)
		if srv.served(req.GetTypeUrl()) {
			in.note(req)
		}
		after, _ := snapshot(srv, "c2")
		pureNACK := existed && req.GetResponseNonce() != "" && req.GetErrorDetail() != nil && len(req.GetResourceNamesSubscribe())+len(req.GetResourceNamesUnsubscribe()) == 0
		if pureNACK {
			bt, at := before.Types[req.GetTypeUrl()], after.Types[req.GetTypeUrl()]
			if at.NACKs != bt.NACKs+1 || at.LastNACK != req.GetErrorDetail().GetMessage() {
				t.Fatalf("NACK not recorded: before %+v after %+v", bt, at)
			}
			opts := cmp.Options{cmpopts.IgnoreFields(TypeStatus{}, "NACKs", "LastNACK", "Pending"), cmpopts.EquateEmpty()}
			if diff := cmp.Diff(bt, at, opts); diff != "" {
				t.Fatalf("NACK changed the client's state (-before +after):\n%s", diff)
			}
		}
		for _, typ := range srv.cfg.Types {
			r, _ := b.build(typ)
			if r == nil {
				continue
			}
			if pureNACK && typ == req.GetTypeUrl() {
				t.Fatalf("a NACK was answered with a push: %v", r)
			}
			in.check(t, "c2", r)
			sent = append(sent, r.GetNonce())
		}
	}
	afterA, _ := snapshot(srv, "c1")
	if diff := cmp.Diff(beforeA, afterA, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("another client's requests changed this client's state (-before +after):\n%s", diff)
	}
	for _, typ := range srv.cfg.Types {
		if r, _ := a.build(typ); r != nil {
			t.Fatalf("another client's requests made a push to this one: %v", r)
		}
	}
}

// memStream is an in-memory server stream: Recv hands out the script's
// requests, then waits for the server to go quiet and ends with io.EOF;
// Send records.
type memStream struct {
	grpc.ServerStream
	ctx context.Context
	sc  *fuzzScript

	mu   sync.Mutex
	sent []*discoveryv3.DeltaDiscoveryResponse
}

func (m *memStream) Context() context.Context     { return m.ctx }
func (m *memStream) SetHeader(metadata.MD) error  { return nil }
func (m *memStream) SendHeader(metadata.MD) error { return nil }
func (m *memStream) SetTrailer(metadata.MD)       {}

func (m *memStream) Send(r *discoveryv3.DeltaDiscoveryResponse) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, r)
	return nil
}

func (m *memStream) nonces() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, len(m.sent))
	for i, r := range m.sent {
		out[i] = r.GetNonce()
	}
	return out
}

func (m *memStream) Recv() (*discoveryv3.DeltaDiscoveryRequest, error) {
	if req, ok := m.sc.next(m.nonces()); ok {
		return req, nil
	}
	// Let the write loop answer the last requests: wait until the number
	// of responses stays put for a moment (bounded).
	n := -1
	for range 20 {
		m.mu.Lock()
		cur := len(m.sent)
		m.mu.Unlock()
		if cur == n {
			break
		}
		n = cur
		time.Sleep(200 * time.Microsecond)
	}
	return nil, io.EOF
}

var _ grpc.BidiStreamingServer[discoveryv3.DeltaDiscoveryRequest, discoveryv3.DeltaDiscoveryResponse] = (*memStream)(nil)

// fuzzStream runs the script through DeltaAggregatedResources.
func fuzzStream(t *testing.T, script []byte) {
	srv := New(fuzzModel(), Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms := &memStream{ctx: ctx, sc: &fuzzScript{b: script, other: []string{"c9-1"}}}
	if err := srv.DeltaAggregatedResources(ms); err != nil && ctx.Err() == nil {
		t.Fatalf("stream ended with %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("stream did not end after the client's EOF")
	}
	// Replay the requests to know what was asked; the responses interleave
	// with them in an order the write loop chose, so check each response
	// against everything the client asked for in the whole script.
	in := interests{}
	sc := &fuzzScript{b: script, other: []string{"c9-1"}}
	nonces := ms.nonces()
	for i := 0; ; i++ {
		req, ok := sc.next(nonces[:min(i, len(nonces))])
		if !ok {
			break
		}
		if srv.served(req.GetTypeUrl()) {
			in.note(req)
		}
	}
	for _, r := range ms.sent {
		in.check(t, "c1", r)
	}
	if got := len(srv.connList()); got != 0 {
		t.Fatalf("%d connections left registered after the stream ended", got)
	}
	// State-of-the-world DiscoveryRequests are not served at all.
	if err := srv.StreamAggregatedResources(nil); status.Code(err) != codes.Unimplemented {
		t.Fatalf("StreamAggregatedResources: %v, want Unimplemented", err)
	}
}
