package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weftmesh/weft/pkg/api/l7api"
)

func mustPolicy(t testing.TB, rp *l7api.RetryPolicy, opts ...Option) *Policy {
	t.Helper()
	p, err := New(rp, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, rp := range map[string]*l7api.RetryPolicy{
		"unknown condition": {Attempts: 2, RetryOn: []string{"5xx", "sometimes"}},
		"code too small":    {Attempts: 2, Codes: []uint32{42}},
		"code too large":    {Attempts: 2, Codes: []uint32{600}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(rp); err == nil {
				t.Fatal("New succeeded, want error")
			}
		})
	}
}

func TestShouldRetry(t *testing.T) {
	var (
		connErr    = ConnectFailure(errors.New("dial: no route"))
		resetErr   = Reset(errors.New("stream closed"))
		timeoutErr = fmt.Errorf("attempt: %w", context.DeadlineExceeded)
		otherErr   = errors.New("client went away")
	)
	type outcome struct {
		name    string
		attempt int
		status  int
		err     error
		want    bool
	}
	tests := []struct {
		name     string
		rp       *l7api.RetryPolicy
		outcomes []outcome
	}{
		{
			name: "nil policy never retries",
			outcomes: []outcome{
				{name: "503", attempt: 1, status: 503},
				{name: "connect failure", attempt: 1, err: connErr},
			},
		},
		{
			name: "defaults: connect-failure, reset, 503",
			rp:   &l7api.RetryPolicy{Attempts: 2},
			outcomes: []outcome{
				{name: "503", attempt: 1, status: 503, want: true},
				{name: "500", attempt: 1, status: 500},
				{name: "502", attempt: 1, status: 502},
				{name: "200", attempt: 1, status: 200},
				{name: "connect failure", attempt: 1, err: connErr, want: true},
				{name: "reset", attempt: 2, err: resetErr, want: true},
				{name: "per-try timeout", attempt: 1, err: timeoutErr, want: true},
				{name: "unclassified error", attempt: 1, err: otherErr},
				{name: "attempts exhausted", attempt: 3, status: 503},
				{name: "attempt zero", attempt: 0, status: 503},
			},
		},
		{
			name: "codes only",
			rp:   &l7api.RetryPolicy{Attempts: 1, Codes: []uint32{500, 429}},
			outcomes: []outcome{
				{name: "500", attempt: 1, status: 500, want: true},
				{name: "429", attempt: 1, status: 429, want: true},
				{name: "503 not listed", attempt: 1, status: 503},
				{name: "connect failure", attempt: 1, err: connErr, want: true},
			},
		},
		{
			name: "5xx",
			rp:   &l7api.RetryPolicy{Attempts: 3, RetryOn: []string{On5xx}},
			outcomes: []outcome{
				{name: "500", attempt: 1, status: 500, want: true},
				{name: "599", attempt: 3, status: 599, want: true},
				{name: "404", attempt: 1, status: 404},
				{name: "503 retriable-status-codes not asked", attempt: 1, status: 503, want: true},
				{name: "connect failure", attempt: 1, err: connErr, want: true},
				{name: "reset", attempt: 1, err: resetErr, want: true},
				{name: "timeout", attempt: 1, err: timeoutErr, want: true},
			},
		},
		{
			name: "gateway-error",
			rp:   &l7api.RetryPolicy{Attempts: 3, RetryOn: []string{OnGatewayError}},
			outcomes: []outcome{
				{name: "500", attempt: 1, status: 500},
				{name: "502", attempt: 1, status: 502, want: true},
				{name: "503", attempt: 1, status: 503, want: true},
				{name: "504", attempt: 1, status: 504, want: true},
				{name: "connect failure", attempt: 1, err: connErr, want: true},
			},
		},
		{
			name: "connect-failure only",
			rp:   &l7api.RetryPolicy{Attempts: 3, RetryOn: []string{OnConnectFailure}},
			outcomes: []outcome{
				{name: "connect failure", attempt: 1, err: connErr, want: true},
				{name: "reset", attempt: 1, err: resetErr},
				{name: "timeout", attempt: 1, err: timeoutErr},
				{name: "503", attempt: 1, status: 503},
			},
		},
		{
			name: "reset only",
			rp:   &l7api.RetryPolicy{Attempts: 3, RetryOn: []string{OnReset}},
			outcomes: []outcome{
				{name: "connect failure", attempt: 1, err: connErr, want: true},
				{name: "reset", attempt: 1, err: resetErr, want: true},
				{name: "timeout", attempt: 1, err: timeoutErr, want: true},
				{name: "503", attempt: 1, status: 503},
			},
		},
		{
			name: "retriable-status-codes without codes means 503",
			rp:   &l7api.RetryPolicy{Attempts: 1, RetryOn: []string{OnRetriableStatusCodes}},
			outcomes: []outcome{
				{name: "503", attempt: 1, status: 503, want: true},
				{name: "502", attempt: 1, status: 502},
				{name: "connect failure", attempt: 1, err: connErr},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p *Policy
			if tt.rp != nil {
				p = mustPolicy(t, tt.rp)
			}
			for _, o := range tt.outcomes {
				if got := p.ShouldRetry(o.attempt, o.status, o.err); got != o.want {
					t.Errorf("%s: ShouldRetry(%d, %d, %v) = %v, want %v", o.name, o.attempt, o.status, o.err, got, o.want)
				}
			}
		})
	}
}

func TestShouldRetryGRPC(t *testing.T) {
	p := mustPolicy(t, &l7api.RetryPolicy{Attempts: 1, RetryOn: []string{OnUnavailable, OnResourceExhausted}})
	for code, want := range map[int]bool{0: false, 1: false, 4: false, 8: true, 13: false, 14: true} {
		if got := p.ShouldRetryGRPC(1, code); got != want {
			t.Errorf("ShouldRetryGRPC(1, %d) = %v, want %v", code, got, want)
		}
	}
	if p.ShouldRetryGRPC(2, 14) {
		t.Error("ShouldRetryGRPC(2, 14) = true beyond attempts")
	}
	all := mustPolicy(t, &l7api.RetryPolicy{Attempts: 1, RetryOn: []string{OnCancelled, OnDeadlineExceeded, OnInternal}})
	for _, code := range []int{1, 4, 13} {
		if !all.ShouldRetryGRPC(1, code) {
			t.Errorf("ShouldRetryGRPC(1, %d) = false, want true", code)
		}
	}
}

func TestBackoff(t *testing.T) {
	base := 100 * time.Millisecond
	rp := &l7api.RetryPolicy{Attempts: 10, Backoff: durationpb.New(base)}
	low := mustPolicy(t, rp, WithRand(func() float64 { return 0 }))
	high := mustPolicy(t, rp, WithRand(func() float64 { return 1 }))
	for attempt, ceiling := range map[int]time.Duration{
		0: base, 1: base, 2: 2 * base, 3: 4 * base, 4: 8 * base,
		5: 10 * base, 6: 10 * base, 60: 10 * base, // capped at MaxBackoffFactor×base
	} {
		if got, want := low.Backoff(attempt), ceiling/2; got != want {
			t.Errorf("Backoff(%d) with jitter 0 = %v, want %v", attempt, got, want)
		}
		if got := high.Backoff(attempt); got != ceiling {
			t.Errorf("Backoff(%d) with jitter 1 = %v, want %v", attempt, got, ceiling)
		}
	}
	def := mustPolicy(t, &l7api.RetryPolicy{Attempts: 1})
	for range 1000 {
		if got := def.Backoff(1); got < DefaultBackoff/2 || got > DefaultBackoff {
			t.Fatalf("default Backoff(1) = %v, want within [%v, %v]", got, DefaultBackoff/2, DefaultBackoff)
		}
	}
	var zero Policy
	if got := zero.Backoff(1); got != 0 {
		t.Errorf("zero Policy Backoff = %v, want 0", got)
	}
	var nilPolicy *Policy
	if got := nilPolicy.Backoff(1); got != 0 {
		t.Errorf("nil Policy Backoff = %v, want 0", got)
	}
}

func TestAccessors(t *testing.T) {
	p := mustPolicy(t, &l7api.RetryPolicy{Attempts: 3, PerTryTimeout: durationpb.New(2 * time.Second)})
	if p.Attempts() != 3 || p.PerTryTimeout() != 2*time.Second {
		t.Errorf("Attempts, PerTryTimeout = %d, %v; want 3, 2s", p.Attempts(), p.PerTryTimeout())
	}
	var nilPolicy *Policy
	if nilPolicy.Attempts() != 0 || nilPolicy.PerTryTimeout() != 0 {
		t.Error("nil Policy accessors not zero")
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, KindOther},
		{"plain", errors.New("boom"), KindOther},
		{"canceled", context.Canceled, KindOther},
		{"marked connect failure", ConnectFailure(context.DeadlineExceeded), KindConnectFailure},
		{"marked reset", Reset(io.EOF), KindReset},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), KindTimeout},
		{"os deadline", os.ErrDeadlineExceeded, KindTimeout},
		{"refused", &net.OpError{Op: "read", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, KindConnectFailure},
		{"dial op", &net.OpError{Op: "dial", Err: errors.New("no such host")}, KindConnectFailure},
		{"econnreset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, KindReset},
		{"unexpected eof", fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), KindReset},
		{"net timeout", timeoutError{}, KindTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if ConnectFailure(nil) != nil || Reset(nil) != nil {
		t.Error("marking nil must stay nil")
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
