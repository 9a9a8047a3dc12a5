//go:build linux

package zds

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
	"github.com/weftmesh/weft/pkg/netns"
)

func pair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	a, b, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

func addReq(uid string) *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{
		Uid:          uid,
		WorkloadInfo: &zdsapi.WorkloadInfo{Name: "web-0", Namespace: "demo", ServiceAccount: "web"},
	}}}
}

func delReq(uid string) *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: uid}}}
}

func keepReq(uid string) *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Keep{Keep: &zdsapi.KeepWorkload{Uid: uid}}}
}

func snapReq() *zdsapi.WorkloadRequest {
	return &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}}
}

func TestHello(t *testing.T) {
	ztunnel, agent := pair(t)
	ctx := context.Background()
	if err := ztunnel.SendHello(ctx, zdsapi.Version_V1); err != nil {
		t.Fatal(err)
	}
	h, err := agent.RecvHello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if h.GetVersion() != zdsapi.Version_V1 {
		t.Fatalf("version %v", h.GetVersion())
	}
	if err := ztunnel.SendHello(ctx, zdsapi.Version_NOT_USED); err == nil {
		if _, err := agent.RecvHello(ctx); !errors.Is(err, ErrInvalidMessage) {
			t.Fatalf("RecvHello(NOT_USED) err = %v", err)
		}
	}
}

func TestRequestsWithoutFD(t *testing.T) {
	agent, ztunnel := pair(t)
	ctx := context.Background()
	for _, req := range []*zdsapi.WorkloadRequest{delReq("u1"), keepReq("u2"), snapReq()} {
		t.Run(RequestKind(req), func(t *testing.T) {
			if err := agent.SendRequest(ctx, req, nil); err != nil {
				t.Fatal(err)
			}
			got, f, err := ztunnel.RecvRequest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f != nil {
				t.Fatal("unexpected file")
			}
			if diff := cmp.Diff(req, got, protocmp.Transform()); diff != "" {
				t.Fatalf("request (-sent +got):\n%s", diff)
			}
		})
	}
}

func TestAddCarriesNetns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ns.Close() }()
	agent, ztunnel := pair(t)
	ctx := context.Background()

	done := make(chan error, 1)
	go func() { done <- agent.Request(ctx, addReq("uid-1"), ns.File()) }()

	req, f, err := ztunnel.RecvRequest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(addReq("uid-1"), req, protocmp.Transform()); diff != "" {
		t.Fatalf("request (-sent +got):\n%s", diff)
	}
	if f == nil {
		t.Fatal("add arrived without a netns file")
	}
	got, err := netns.FromFile(f)
	if err != nil {
		t.Fatalf("received fd is not a netns: %v", err)
	}
	defer func() { _ = got.Close() }()
	if same, err := got.SameAs(ns); err != nil || !same {
		t.Fatalf("received netns differs: same=%v err=%v", same, err)
	}
	if err := ztunnel.SendAck(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Request: %v", err)
	}

	// A rejected add comes back as *AckError.
	go func() { done <- agent.Request(ctx, addReq("uid-2"), ns.File()) }()
	_, f2, err := ztunnel.RecvRequest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = f2.Close()
	if err := ztunnel.SendAck(ctx, errors.New("no listeners")); err != nil {
		t.Fatal(err)
	}
	var ackErr *AckError
	if err := <-done; !errors.As(err, &ackErr) || ackErr.Message != "no listeners" {
		t.Fatalf("Request err = %v, want AckError", err)
	}
}

func TestSendValidates(t *testing.T) {
	agent, _ := pair(t)
	ctx := context.Background()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = devnull.Close() }()
	cases := []struct {
		name string
		req  *zdsapi.WorkloadRequest
		fd   *os.File
	}{
		{"add without fd", addReq("u"), nil},
		{"add without uid", addReq(""), devnull},
		{"del with fd", delReq("u"), devnull},
		{"del without uid", delReq(""), nil},
		{"empty", &zdsapi.WorkloadRequest{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := agent.SendRequest(ctx, tc.req, tc.fd); !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
		})
	}
}

// rawSend writes bytes and fds without validation, as a broken peer would.
func rawSend(t *testing.T, c *Conn, b []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.uc.WriteMsgUnix(b, oob, nil); err != nil {
		t.Fatal(err)
	}
}

func openFDCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestRecvRejectsBadPacketsAndClosesFDs(t *testing.T) {
	agent, ztunnel := pair(t)
	ctx := context.Background()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = devnull.Close() }()
	dn := int(devnull.Fd())
	mustMarshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		b    []byte
		fds  []int
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, nil},
		{"add without fd", mustMarshal(addReq("u")), nil},
		{"add with two fds", mustMarshal(addReq("u")), []int{dn, dn}},
		{"del with fd", mustMarshal(delReq("u")), []int{dn}},
		{"too many fds", mustMarshal(addReq("u")), []int{dn, dn, dn, dn, dn, dn, dn, dn, dn, dn}},
	}
	before := openFDCount(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rawSend(t, agent, tc.b, tc.fds...)
			if _, f, err := ztunnel.RecvRequest(ctx); !errors.Is(err, ErrInvalidMessage) {
				if f != nil {
					_ = f.Close()
				}
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
		})
	}
	if after := openFDCount(t); after != before {
		t.Fatalf("open fds %d -> %d: received descriptors leaked", before, after)
	}
	// The connection is still usable.
	if err := agent.SendRequest(ctx, delReq("u"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ztunnel.RecvRequest(ctx); err != nil {
		t.Fatalf("after bad packets: %v", err)
	}
}

func TestAckTimeout(t *testing.T) {
	agent, ztunnel := pair(t)
	agent.SetTimeout(100 * time.Millisecond)
	ctx := context.Background()
	start := time.Now()
	err := agent.Request(ctx, delReq("u"), nil)
	if !IsTimeout(err) {
		t.Fatalf("err = %v, want timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	// The silent peer did receive the request.
	if _, _, err := ztunnel.RecvRequest(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRecvRequestContext(t *testing.T) {
	_, ztunnel := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, _, err := ztunnel.RecvRequest(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPeerCloseIsEOF(t *testing.T) {
	agent, ztunnel := pair(t)
	if ztunnel.PeerClosed() {
		t.Fatal("PeerClosed on an open connection")
	}
	if err := agent.SendRequest(context.Background(), snapReq(), nil); err != nil {
		t.Fatal(err)
	}
	if ztunnel.PeerClosed() {
		t.Fatal("PeerClosed with data pending")
	}
	if _, _, err := ztunnel.RecvRequest(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = agent.Close()
	if !ztunnel.PeerClosed() {
		t.Fatal("PeerClosed false after the peer closed")
	}
	_ = agent.Close()
	if _, _, err := ztunnel.RecvRequest(context.Background()); err == nil {
		t.Fatal("RecvRequest after peer close succeeded")
	}
}

func TestListenDial(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "ztunnel.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// A stale socket file from an earlier run is replaced.
	l1, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	l1.ul.SetUnlinkOnClose(false)
	_ = l1.Close()
	l, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over stale socket: %v", err)
	}
	defer func() { _ = l.Close() }()

	accepted := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err != nil {
			t.Error(err)
			close(accepted)
			return
		}
		accepted <- c
	}()
	zt, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = zt.Close() }()
	if err := zt.SendHello(ctx, zdsapi.Version_V1); err != nil {
		t.Fatal(err)
	}
	ag := <-accepted
	if ag == nil {
		t.FailNow()
	}
	defer func() { _ = ag.Close() }()
	if _, err := ag.RecvHello(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { _ = ag.Request(ctx, snapReq(), nil) }()
	if _, _, err := zt.RecvRequest(ctx); err != nil {
		t.Fatal(err)
	}

	// Accept ends with its context.
	actx, acancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer acancel()
	if _, err := l.Accept(actx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Accept err = %v, want deadline exceeded", err)
	}
	_ = l.Close()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := Listen(path); err == nil {
		_ = l.Close()
		t.Fatal("Listen over a regular file succeeded")
	}
}
