package zds

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/weftmesh/weft/pkg/api/zdsapi"
)

func FuzzDecodeRequest(f *testing.F) {
	seeds := []*zdsapi.WorkloadRequest{
		{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: "u", WorkloadInfo: &zdsapi.WorkloadInfo{Name: "n", Namespace: "ns", ServiceAccount: "sa"}}}},
		{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: "u"}}},
		{Payload: &zdsapi.WorkloadRequest_Keep{Keep: &zdsapi.KeepWorkload{Uid: "u"}}},
		{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}},
	}
	for i, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, i%2)
	}
	f.Add([]byte{0xff}, 0)
	f.Add([]byte{}, 1)
	f.Fuzz(func(t *testing.T, b []byte, nfds int) {
		req, err := DecodeRequest(b, nfds)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v does not wrap ErrInvalidMessage", err)
			}
			return
		}
		// Accepted requests are consistent and survive a round trip.
		if req.GetAdd() != nil != (nfds == 1) {
			t.Fatalf("accepted %s with %d fds", RequestKind(req), nfds)
		}
		again, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeRequest(again, nfds)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(req, back, protocmp.Transform()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, e := range []string{"", "boom"} {
		b, _ := proto.Marshal(&zdsapi.WorkloadResponse{Payload: &zdsapi.WorkloadResponse_Ack{Ack: &zdsapi.Ack{Error: e}}})
		f.Add(b)
	}
	f.Add([]byte{0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := DecodeResponse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("error %v does not wrap ErrInvalidMessage", err)
			}
			return
		}
		if resp.GetAck() == nil {
			t.Fatal("accepted a response without ack")
		}
		_, _ = DecodeHello(b)
	})
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name    string
		req     *zdsapi.WorkloadRequest
		nfds    int
		wantErr bool
	}{
		{"add", &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: "u"}}}, 1, false},
		{"add no fd", &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: "u"}}}, 0, true},
		{"del", &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: "u"}}}, 0, false},
		{"snapshot with fd", &zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_SnapshotSent{SnapshotSent: &zdsapi.SnapshotSent{}}}, 1, true},
		{"empty", &zdsapi.WorkloadRequest{}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeRequest(b, tc.nfds)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.req, got, protocmp.Transform()); diff != "" {
					t.Fatal(diff)
				}
			}
		})
	}
}
