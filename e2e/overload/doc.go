// Package overload holds in-process component tests of how the mesh's
// tunnel behaves under pressure, over loopback: a slow reader on one HBONE
// stream must not stall the other streams of the same connection (flow
// control per stream, connection window replenished), and streams over
// the caps are refused clearly.
package overload
