package certmgr

import (
	"cmp"
	"slices"
	"time"

	"github.com/weftmesh/weft/pkg/identity"
)

// State is an identity's certificate state as the admin endpoint shows it.
type State string

// The states of a certificate.
const (
	// StateInitializing: no certificate yet, the first fetch is under way.
	StateInitializing State = "Initializing"
	// StateAvailable: a valid certificate is held (it may be being renewed).
	StateAvailable State = "Available"
	// StateUnavailable: no valid certificate; fetches are failing.
	StateUnavailable State = "Unavailable"
)

// Status describes one identity's certificate at the time of Snapshot.
type Status struct {
	ID    identity.ID `json:"identity"`
	State State       `json:"state"`
	// Serial (hex), NotBefore, NotAfter and RefreshAt describe the held
	// certificate; zero when there is none.
	Serial    string    `json:"serial,omitempty"`
	NotBefore time.Time `json:"notBefore,omitzero"`
	NotAfter  time.Time `json:"notAfter,omitzero"`
	RefreshAt time.Time `json:"refreshAt,omitzero"`
	// ChainPEM is the held chain, leaf first.
	ChainPEM string `json:"chainPem,omitempty"`
	// Refs is how many Track calls hold the identity.
	Refs int `json:"refs"`
	// Fetching is true while a fetch is in flight.
	Fetching bool `json:"fetching"`
	// LastError and Failures describe consecutive failed fetches.
	LastError string `json:"lastError,omitempty"`
	Failures  int    `json:"failures,omitempty"`
	// NextAttempt is when the next fetch starts.
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

// Snapshot returns the status of every identity, sorted by ID string.
func (m *Manager) Snapshot() []Status {
	now := m.cfg.Clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.entries))
	for _, e := range m.entries {
		s := Status{ID: e.id, Refs: e.refs, Fetching: e.fetching, Failures: e.failures, NextAttempt: e.next}
		if e.lastErr != nil {
			s.LastError = e.lastErr.Error()
		}
		switch {
		case e.cert != nil && !e.cert.ExpiredAt(now):
			s.State = StateAvailable
		case e.cert == nil && e.lastErr == nil:
			s.State = StateInitializing
		default:
			s.State = StateUnavailable
		}
		if c := e.cert; c != nil {
			s.Serial = c.Leaf.SerialNumber.Text(16)
			s.NotBefore, s.NotAfter, s.RefreshAt = c.Leaf.NotBefore, c.Leaf.NotAfter, c.RefreshAt()
			s.ChainPEM = string(c.ChainPEM())
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.ID.String(), b.ID.String()) })
	return out
}
