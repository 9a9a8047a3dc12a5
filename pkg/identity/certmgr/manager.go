package certmgr

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
)

// Fetcher obtains a signed certificate chain for a CSR. The CA client
// (package caclient) is the production implementation.
type Fetcher interface {
	// Fetch asks for csrPEM, whose only SAN is id, to be signed with the
	// given validity. It returns PEM certificates, leaf first, root last.
	// It must be safe for concurrent use and honour ctx.
	Fetch(ctx context.Context, id identity.ID, csrPEM []byte, validity time.Duration) ([]string, error)
}

// Defaults for Config.
const (
	DefaultValidity       = 24 * time.Hour
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 150 * time.Second
	DefaultFetchTimeout   = 30 * time.Second
)

// ErrForgotten is returned to callers waiting in Get when the identity is
// forgotten before a certificate arrived.
var ErrForgotten = errors.New("identity forgotten")

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("certificate manager closed")

// Config configures a Manager. Zero fields take the defaults above.
type Config struct {
	// Fetcher signs CSRs. Required.
	Fetcher Fetcher
	// Validity is the lifetime requested for each certificate.
	Validity time.Duration
	// InitialBackoff and MaxBackoff bound the retry delay after a failed
	// fetch, which doubles after each consecutive failure.
	InitialBackoff, MaxBackoff time.Duration
	// FetchTimeout bounds one fetch.
	FetchTimeout time.Duration
	// Clock is the time source; nil means the wall clock.
	Clock Clock
	// NewKey makes a key per request; nil means identity.GenerateKey.
	NewKey func() (crypto.Signer, error)
	// Logger receives one line per fetch failure and rotation; nil discards.
	Logger *slog.Logger
}

// Manager holds one certificate per identity. It is safe for concurrent use.
// Every background goroutine belongs to the Manager and stops on Close.
type Manager struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	entries map[identity.ID]*entry
	closed  bool
	roots   *x509.CertPool // union of the roots of available certificates; nil = recompute
}

type entry struct {
	id       identity.ID
	refs     int // Track calls minus Forget calls
	waiters  int // Get calls blocked on this entry
	cert     *identity.Certificate
	lastErr  error
	failures int // consecutive failed fetches
	next     time.Time
	fetching bool
	changed  chan struct{} // closed and replaced whenever cert or lastErr changes
	gone     chan struct{} // closed when the entry is removed
	cancel   context.CancelFunc
}

// New returns a Manager; it starts no goroutine until an identity is used.
func New(cfg Config) (*Manager, error) {
	if cfg.Fetcher == nil {
		return nil, errors.New("certmgr: Fetcher is required")
	}
	if cfg.Validity <= 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = DefaultInitialBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.InitialBackoff {
		return nil, fmt.Errorf("certmgr: MaxBackoff %s is below InitialBackoff %s", cfg.MaxBackoff, cfg.InitialBackoff)
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock()
	}
	if cfg.NewKey == nil {
		cfg.NewKey = func() (crypto.Signer, error) { return identity.GenerateKey() }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, ctx: ctx, cancel: cancel, entries: map[identity.ID]*entry{}}, nil
}

// Track declares that a workload with identity id exists on this node, so
// its certificate is fetched now (if not yet held) and kept fresh until a
// matching Forget. Calls nest: n Tracks need n Forgets.
func (m *Manager) Track(id identity.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.entryLocked(id).refs++
}

// Forget undoes one Track. When nothing tracks id any more its certificate
// is dropped at once, its refresh stops, and callers blocked in Get for it
// receive ErrForgotten. Forgetting an untracked identity does nothing.
func (m *Manager) Forget(id identity.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[id]
	if !ok || e.refs == 0 {
		return
	}
	e.refs--
	if e.refs == 0 {
		m.removeLocked(e)
	}
}

// Get returns a currently valid certificate for id, waiting for the first
// fetch if needed; all concurrent callers share one fetch. An identity that
// is not tracked is fetched too and kept until its next refresh or retry
// finds nobody tracking or waiting for it. Get fails only when ctx ends
// (the error then includes the last fetch error), on ErrForgotten, or on
// ErrClosed.
func (m *Manager) Get(ctx context.Context, id identity.ID) (*identity.Certificate, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	e := m.entryLocked(id)
	e.waiters++
	defer func() {
		m.mu.Lock()
		e.waiters--
		m.mu.Unlock()
	}()
	for {
		if e.cert != nil && !e.cert.ExpiredAt(m.cfg.Clock.Now()) {
			c := e.cert
			m.mu.Unlock()
			return c, nil
		}
		changed, gone, lastErr := e.changed, e.gone, e.lastErr
		m.mu.Unlock()
		select {
		case <-changed:
		case <-gone:
			if m.ctx.Err() != nil {
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("certificate for %s: %w", id, ErrForgotten)
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("certificate for %s: %w (last fetch error: %v)", id, ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("certificate for %s: %w", id, ctx.Err())
		}
		m.mu.Lock()
	}
}

// Roots returns the union of the trust anchors that came with the currently
// held certificates. It suits identity.RootsFunc and is cheap: the pool is
// rebuilt only when a certificate changes. Callers must not modify it.
func (m *Manager) Roots() *x509.CertPool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.roots == nil {
		pool := x509.NewCertPool()
		for _, e := range m.entries {
			if e.cert != nil {
				for _, r := range e.cert.Roots {
					pool.AddCert(r)
				}
			}
		}
		m.roots = pool
	}
	return m.roots
}

// Close stops every refresh, fails pending Gets with ErrClosed and waits for
// the background goroutines. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		for _, e := range m.entries {
			m.removeLocked(e)
		}
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// entryLocked returns id's entry, creating it and its refresh goroutine.
func (m *Manager) entryLocked(id identity.ID) *entry {
	if e, ok := m.entries[id]; ok {
		return e
	}
	ctx, cancel := context.WithCancel(m.ctx)
	e := &entry{id: id, changed: make(chan struct{}), gone: make(chan struct{}), cancel: cancel}
	m.entries[id] = e
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(ctx, e)
	}()
	return e
}

func (m *Manager) removeLocked(e *entry) {
	if m.entries[e.id] != e {
		return
	}
	delete(m.entries, e.id)
	e.cancel()
	close(e.gone)
	if e.cert != nil {
		m.roots = nil
	}
}

func (m *Manager) notifyLocked(e *entry) {
	close(e.changed)
	e.changed = make(chan struct{})
}

// run is the life of one entry: fetch, wait for half-life or back-off,
// repeat, until the entry is removed or found unused on waking.
func (m *Manager) run(ctx context.Context, e *entry) {
	log := m.cfg.Logger.With("identity", e.id.String())
	backoff := m.cfg.InitialBackoff
	for {
		m.mu.Lock()
		e.fetching = true
		m.mu.Unlock()
		cert, err := m.fetch(ctx, e.id)
		if ctx.Err() != nil {
			return
		}
		now := m.cfg.Clock.Now()
		var wait time.Duration
		m.mu.Lock()
		e.fetching = false
		if err != nil {
			e.lastErr = err
			e.failures++
			wait = backoff
			backoff = min(backoff*2, m.cfg.MaxBackoff)
			log.Warn("certificate fetch failed", "error", err, "failures", e.failures, "retry_in", wait)
		} else {
			e.cert, e.lastErr, e.failures = cert, nil, 0
			m.roots = nil
			backoff = m.cfg.InitialBackoff
			wait = max(cert.RefreshAt().Sub(now), m.cfg.InitialBackoff)
			log.Info("certificate issued", "serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter)
		}
		e.next = now.Add(wait)
		m.notifyLocked(e)
		m.mu.Unlock()

		t := m.cfg.Clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		m.mu.Lock()
		unused := e.refs == 0 && e.waiters == 0
		if unused {
			m.removeLocked(e)
		}
		m.mu.Unlock()
		if unused {
			return
		}
	}
}

// fetch makes a key and CSR, asks the Fetcher, and checks the answer.
func (m *Manager) fetch(ctx context.Context, id identity.ID) (*identity.Certificate, error) {
	key, err := m.cfg.NewKey()
	if err != nil {
		return nil, err
	}
	csr, err := identity.NewCSR(key, id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.FetchTimeout)
	defer cancel()
	pems, err := m.cfg.Fetcher.Fetch(ctx, id, csr, m.cfg.Validity)
	if err != nil {
		return nil, fmt.Errorf("fetch certificate for %s: %w", id, err)
	}
	chain, err := identity.ParseCertificates([]byte(strings.Join(pems, "\n")))
	if err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", id, err)
	}
	cert, err := identity.NewCertificate(key, chain)
	if err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", id, err)
	}
	if cert.ID != id {
		return nil, fmt.Errorf("certificate for %s: CA issued %s instead", id, cert.ID)
	}
	if len(cert.Roots) > 0 {
		// Check that the chain holds together; tolerate a CA clock that is
		// a little ahead of ours by checking at the start of validity.
		at := m.cfg.Clock.Now()
		if at.Before(cert.Leaf.NotBefore) {
			at = cert.Leaf.NotBefore
		}
		if _, err := identity.VerifyChain(chain, identity.VerifyOptions{
			Roots: cert.RootPool(), TrustDomain: id.TrustDomain, Expected: []identity.ID{id}, Now: at,
		}); err != nil {
			return nil, fmt.Errorf("certificate for %s: %w", id, err)
		}
	}
	return cert, nil
}
