package xds

import "context"

// maxFullPushes bounds how many connections build and send a full state
// (the first response to a wildcard subscription, the whole model) at
// once. A full state of 5,000 workloads is a few megabytes between the
// built response, its encoding and the transport's buffers; when many
// clients connect together (a control-plane restart), building them all
// at once would hold that many times over. Later, incremental pushes are
// small and never wait.
const maxFullPushes = 2

// fullPushSlot waits for a full-push slot when the next response of type t
// to c is a full state, and returns the function that gives it back
// (a no-op when no slot was taken). It gives up waiting, taking no slot,
// when ctx ends or the server closes.
func (s *Server) fullPushSlot(ctx context.Context, c *conn, t string) func() {
	c.mu.Lock()
	w := c.watches[t]
	full := w != nil && w.full
	c.mu.Unlock()
	if !full {
		return func() {}
	}
	select {
	case s.fullPushes <- struct{}{}:
		return func() { <-s.fullPushes }
	case <-ctx.Done():
	case <-s.closing:
	}
	return func() {}
}
