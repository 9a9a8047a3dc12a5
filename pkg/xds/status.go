package xds

import (
	"maps"
	"slices"
)

// Status is a snapshot of the client's connection and per-type progress.
type Status struct {
	// Connected is true while a stream is open.
	Connected bool
	// Streams counts streams opened since the client started.
	Streams uint64
	// Types holds per-type status, keyed by type URL.
	Types map[string]TypeStatus
}

// TypeStatus is the progress of one type URL.
type TypeStatus struct {
	// Wildcard is true when the type is subscribed with a wildcard.
	Wildcard bool
	// Subscribed lists the explicit (on-demand) names, sorted.
	Subscribed []string
	// Resources is the number of accepted resources currently held.
	Resources int
	// Nonce and Version are those of the last ACKed response.
	Nonce   string
	Version string
	// ACKs and NACKs count responses accepted and rejected.
	ACKs  uint64
	NACKs uint64
	// LastNACK is the error of the last rejected response.
	LastNACK string
}

// Status returns a snapshot of the client's state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Connected: c.connected, Streams: c.streams, Types: make(map[string]TypeStatus, len(c.types))}
	for t, ts := range c.types {
		s.Types[t] = TypeStatus{
			Wildcard:   ts.wildcard,
			Subscribed: slices.Sorted(maps.Keys(ts.names)),
			Resources:  len(ts.versions),
			Nonce:      ts.nonce,
			Version:    ts.version,
			ACKs:       ts.acks,
			NACKs:      ts.nacks,
			LastNACK:   ts.lastNACK,
		}
	}
	return s
}
