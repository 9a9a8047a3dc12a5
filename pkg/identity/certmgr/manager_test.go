package certmgr

import (
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weftmesh/weft/pkg/identity"
	"github.com/weftmesh/weft/pkg/identity/identitytest"
)

var (
	appID = identity.MustParseID("spiffe://cluster.local/ns/demo/sa/app")
	dbID  = identity.MustParseID("spiffe://cluster.local/ns/demo/sa/db")
)

// fakeFetcher signs with a test CA at the fake clock's time. fail makes the
// next calls fail; gate, when set, blocks each call until it is closed.
type fakeFetcher struct {
	ca    *identitytest.CA
	clock *fakeClock
	calls atomic.Int32

	mu   sync.Mutex
	fail error
	gate chan struct{}
	as   *identity.ID // issue for this identity instead of the requested one
}

func (f *fakeFetcher) Fetch(ctx context.Context, id identity.ID, csr []byte, validity time.Duration) ([]string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	gate, fail, as := f.gate, f.fail, f.as
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	if as != nil {
		c, err := f.ca.Issue(*as, f.clock.Now(), f.clock.Now().Add(validity))
		if err != nil {
			return nil, err
		}
		return []string{string(identity.EncodeCertificate(c.Leaf)), string(f.ca.RootPEM())}, nil
	}
	now := f.clock.Now()
	return f.ca.SignCSR(csr, now, now.Add(validity))
}

func (f *fakeFetcher) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func newTestManager(t *testing.T) (*Manager, *fakeClock, *fakeFetcher) {
	t.Helper()
	clock := newFakeClock()
	f := &fakeFetcher{ca: identitytest.NewCA("test"), clock: clock}
	m, err := New(Config{Fetcher: f, Clock: clock, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m, clock, f
}

func get(t *testing.T, m *Manager, id identity.ID) *identity.Certificate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := m.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return c
}

func TestSingleFlight(t *testing.T) {
	m, _, f := newTestManager(t)
	gate := make(chan struct{})
	f.gate = gate
	const callers = 20
	var wg sync.WaitGroup
	certs := make([]*identity.Certificate, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() { certs[i], errs[i] = m.Get(context.Background(), appID) })
	}
	// Let the callers pile up behind the one fetch, then release it.
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d fetches for %d concurrent callers, want 1", n, callers)
	}
	for i, c := range certs {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if c != certs[0] {
			t.Fatalf("caller %d got a different certificate", i)
		}
	}
	if certs[0].ID != appID {
		t.Fatalf("got %s, want %s", certs[0].ID, appID)
	}
}

func TestRefreshAtHalfLife(t *testing.T) {
	m, clock, f := newTestManager(t)
	m.Track(appID)
	first := get(t, m, appID)
	clock.waitTimers(t, 1)
	if got := clock.durations(); !cmp.Equal(got, []time.Duration{12 * time.Hour}) {
		t.Fatalf("refresh timer %v, want [12h]", got)
	}
	clock.Advance(12*time.Hour - time.Second)
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("refreshed before half-life: %d fetches", n)
	}
	clock.Advance(time.Second)
	clock.waitTimers(t, 1)
	second := get(t, m, appID)
	if f.calls.Load() != 2 || second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatalf("no new certificate at half-life: %d fetches, serials %s %s", f.calls.Load(), first.Leaf.SerialNumber, second.Leaf.SerialNumber)
	}
	st := m.Snapshot()
	if len(st) != 1 || st[0].State != StateAvailable || st[0].Serial != second.Leaf.SerialNumber.Text(16) || st[0].Refs != 1 {
		t.Fatalf("snapshot %+v", st)
	}
}

func TestBackoffAndKeepOldCertificate(t *testing.T) {
	m, clock, f := newTestManager(t)
	m.Track(appID)
	old := get(t, m, appID)
	clock.waitTimers(t, 1)

	f.setFail(errors.New("ca unavailable"))
	clock.Advance(12 * time.Hour) // half-life: refresh starts failing
	want := []time.Duration{12 * time.Hour}
	backoff := 500 * time.Millisecond
	for range 12 {
		clock.waitTimers(t, 1)
		want = append(want, backoff)
		// The old certificate is still served while refreshes fail.
		if c := get(t, m, appID); c != old {
			t.Fatal("old certificate not kept while refresh fails")
		}
		clock.Advance(backoff)
		backoff = min(2*backoff, 150*time.Second)
	}
	clock.waitTimers(t, 1)
	want = append(want, 150*time.Second)
	got := clock.durations()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("timer durations (-want +got):\n%s", diff)
	}
	st := m.Snapshot()[0]
	if st.State != StateAvailable || st.Failures != 13 || st.LastError == "" {
		t.Fatalf("snapshot while failing with a valid cert: state %s, failures %d, error %q", st.State, st.Failures, st.LastError)
	}

	// Past expiry there is no certificate to serve.
	clock.Advance(13 * time.Hour)
	clock.waitTimers(t, 1)
	if st := m.Snapshot()[0]; st.State != StateUnavailable {
		t.Fatalf("state after expiry %s, want Unavailable", st.State)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := m.Get(ctx, appID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get after expiry = %v, want deadline exceeded", err)
	}

	// Recovery resets the back-off.
	f.setFail(nil)
	clock.Advance(150 * time.Second)
	if c := get(t, m, appID); c == old {
		t.Fatal("no new certificate after recovery")
	}
	clock.waitTimers(t, 1)
	// Certificate times have whole seconds, so the half-life may be up to
	// a second short of 12h after the half-second back-off steps.
	if d := clock.durations(); d[len(d)-1] > 12*time.Hour || d[len(d)-1] < 12*time.Hour-time.Second {
		t.Fatalf("after recovery next wait %v, want about 12h", d[len(d)-1])
	}
}

func TestFirstFetchFailsThenRecovers(t *testing.T) {
	m, clock, f := newTestManager(t)
	f.setFail(errors.New("denied"))
	m.Track(appID)
	clock.waitTimers(t, 1)
	st := m.Snapshot()[0]
	if st.State != StateUnavailable || st.LastError == "" {
		t.Fatalf("snapshot %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := m.Get(ctx, appID)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v", err)
	}
	f.setFail(nil)
	clock.Advance(500 * time.Millisecond)
	get(t, m, appID)
}

func TestWrongIdentityFromCA(t *testing.T) {
	m, clock, f := newTestManager(t)
	f.as = &dbID
	m.Track(appID)
	clock.waitTimers(t, 1)
	if st := m.Snapshot()[0]; st.State != StateUnavailable || st.LastError == "" {
		t.Fatalf("accepted a certificate for the wrong identity: %+v", st)
	}
}

func TestForget(t *testing.T) {
	m, clock, f := newTestManager(t)
	m.Track(appID)
	m.Track(appID)
	get(t, m, appID)
	clock.waitTimers(t, 1)
	m.Forget(appID)
	if len(m.Snapshot()) != 1 {
		t.Fatal("forgotten while still tracked once")
	}
	m.Forget(appID)
	if s := m.Snapshot(); len(s) != 0 {
		t.Fatalf("still held after last Forget: %+v", s)
	}
	clock.waitTimers(t, 0) // the refresh goroutine stopped its timer
	clock.Advance(24 * time.Hour)
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d fetches after Forget, want none beyond the first", n)
	}
	m.Forget(appID) // forgetting again is harmless
}

func TestForgetWakesWaiters(t *testing.T) {
	m, _, f := newTestManager(t)
	f.gate = make(chan struct{})
	m.Track(appID)
	errc := make(chan error, 1)
	go func() {
		_, err := m.Get(context.Background(), appID)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	m.Forget(appID)
	if err := <-errc; !errors.Is(err, ErrForgotten) {
		t.Fatalf("Get = %v, want ErrForgotten", err)
	}
}

func TestUntrackedIdentityDroppedAtRefresh(t *testing.T) {
	m, clock, f := newTestManager(t)
	get(t, m, dbID)
	clock.waitTimers(t, 1)
	if len(m.Snapshot()) != 1 {
		t.Fatal("untracked certificate not held until refresh")
	}
	clock.Advance(12 * time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for len(m.Snapshot()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("untracked identity not dropped at its refresh time")
		}
		time.Sleep(time.Millisecond)
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestRootsAndClose(t *testing.T) {
	m, _, _ := newTestManager(t)
	c := get(t, m, appID)
	if _, err := identity.VerifyChain([]*x509.Certificate{c.Leaf}, identity.VerifyOptions{Roots: m.Roots(), TrustDomain: "cluster.local"}); err != nil {
		t.Fatalf("Roots() does not verify the held certificate: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := m.Get(context.Background(), appID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v, want ErrClosed", err)
	}
}
