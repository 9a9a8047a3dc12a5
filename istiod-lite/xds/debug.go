package xds

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// ClientStatus describes one connected client, for the debug endpoint.
type ClientStatus struct {
	ID          string                `json:"id"`
	Node        string                `json:"node"`
	Peer        string                `json:"peer"`
	Caller      string                `json:"caller,omitempty"`
	ConnectedAt time.Time             `json:"connectedAt"`
	Outstanding int                   `json:"outstandingResponses"`
	Types       map[string]TypeStatus `json:"types"`
}

// TypeStatus is one client's view of one type.
type TypeStatus struct {
	Wildcard bool              `json:"wildcard"`
	Names    []string          `json:"names,omitempty"`
	Versions map[string]string `json:"versions,omitempty"`
	Held     int               `json:"held"`
	AckNonce string            `json:"ackNonce,omitempty"`
	ACKs     uint64            `json:"acks"`
	NACKs    uint64            `json:"nacks"`
	LastNACK string            `json:"lastNack,omitempty"`
	// Pending (listed with versions) names the resources added, updated or
	// removed by responses the client has neither ACKed nor NACKed yet: a
	// resource at Versions[name] and not pending is one the client has
	// acknowledged at that version; a name neither held nor pending was
	// removed and the removal acknowledged.
	Pending []string `json:"pending,omitempty"`
}

// Clients returns the connected clients, sorted by id. With versions, each
// type lists every resource version the client holds.
func (s *Server) Clients(versions bool) []ClientStatus {
	var out []ClientStatus
	for _, c := range s.connList() {
		c.mu.Lock()
		cs := ClientStatus{ID: c.id, Node: c.node.GetId(), Peer: c.peer, Caller: c.caller, ConnectedAt: c.connectedAt, Outstanding: len(c.outstanding), Types: map[string]TypeStatus{}}
		for t, w := range c.watches {
			ts := TypeStatus{Wildcard: w.wildcard, Names: slices.Sorted(maps.Keys(w.names)), Held: len(w.sent), AckNonce: w.ackNonce, ACKs: w.acks, NACKs: w.nacks, LastNACK: w.lastNACK}
			if versions {
				ts.Versions = maps.Clone(w.sent)
				ts.Pending = c.pendingLocked(t)
			}
			cs.Types[t] = ts
		}
		c.mu.Unlock()
		out = append(out, cs)
	}
	slices.SortFunc(out, func(a, b ClientStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// LastConvergence is the most recent change batch's time to the last ACK.
func (s *Server) LastConvergence() time.Duration { return s.tracker.lastConvergence() }

// pendingLocked lists, sorted and without repeats, the resources of type t
// carried by responses still awaiting the client's ACK or NACK.
func (c *conn) pendingLocked(t string) []string {
	var out []string
	for _, o := range c.outstanding {
		if o.typeURL == t {
			out = append(out, o.names...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
