// Package loadgen generates load for the whole-mesh benchmark and serves it.
//
// The request generator is open-loop: requests are due on a fixed schedule
// (one every 1/rate seconds) whether or not earlier ones have answered, and
// each latency is measured from the moment the request was due, not from
// the moment a connection was free to send it. A slow path therefore shows
// up as queueing delay in the percentiles instead of silently lowering the
// offered rate (coordinated omission). Samples due during the warm-up are
// discarded.
//
// Beside it: a bulk-transfer reader (Throughput), a new-connection rate
// meter (ConnRate), a holder of many idle connections (Hold), the server
// they talk to (Serve: 1 KiB HTTP/1.1 answers, an endless byte source, a
// connection holder), a pair of plain TLS relays (Relay) that stand where
// the ztunnels would, and an nginx reverse-proxy configuration (Nginx).
// Results are JSON-encodable so that cmd/weft-load can print them.
package loadgen
