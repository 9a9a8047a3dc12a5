// Package certmgr keeps workload certificates fresh on the client side (in
// ztunnel and the waypoint): one certificate per identity, fetched on demand
// through a pluggable Fetcher with at most one request in flight per
// identity, renewed at half-life, retried with exponential back-off
// (0.5 s doubling to 150 s), the old certificate served until it expires,
// and forgotten once no workload needs it.
package certmgr
