//go:build linux

package zds

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

// BenchmarkRequestAck measures one agent→ztunnel request with its ack over
// a socketpair, beside a baseline of the same packets written and read raw
// (no protobuf, no validation, no deadlines). Reports baseline-ns/op and
// x-baseline.
func BenchmarkRequestAck(b *testing.B) {
	ctx := context.Background()
	agent, zt, err := Pair()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = agent.Close() }()
	defer func() { _ = zt.Close() }()
	req := delReq("uid-0123456789")
	reqBytes, _ := proto.Marshal(req)
	ackBytes := []byte{0x0a, 0x00}

	// Baseline: raw packets both ways.
	ra, rb, err := Pair()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = ra.Close() }()
	defer func() { _ = rb.Close() }()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 256)
		for {
			if _, _, _, _, err := rb.uc.ReadMsgUnix(buf, nil); err != nil {
				return
			}
			if _, _, err := rb.uc.WriteMsgUnix(ackBytes, nil, nil); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 256)
	start := time.Now()
	for range b.N {
		if _, _, err := ra.uc.WriteMsgUnix(reqBytes, nil, nil); err != nil {
			b.Fatal(err)
		}
		if _, _, _, _, err := ra.uc.ReadMsgUnix(buf, nil); err != nil {
			b.Fatal(err)
		}
	}
	baseline := time.Since(start)
	_ = ra.Close()
	<-done

	go func() {
		for {
			if _, _, err := zt.RecvRequest(ctx); err != nil {
				return
			}
			if err := zt.SendAck(ctx, nil); err != nil {
				return
			}
		}
	}()
	b.ResetTimer()
	for range b.N {
		if err := agent.Request(ctx, req, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(baseline.Nanoseconds())/float64(b.N), "baseline-ns/op")
	b.ReportMetric(float64(b.Elapsed())/float64(baseline), "x-baseline")
}
