// Package httpproxy serves the HTTP carried in the waypoint's tunnels:
// HTTP/1.1 and prior-knowledge HTTP/2 (h2c) from one net/http server fed
// with tunnel streams, including gRPC with trailers and streaming bodies
// and HTTP/1.1 upgrades (websockets) and CONNECT passed through. Each
// request runs the waypoint's pipeline: L7 authorization (403), route
// match (redirects, direct responses, rewrites), fault injection, rate
// limiting (429 with retry-after), the circuit breaker (503), load
// balancing over the backend Service's endpoints with outlier ejection,
// retries within a budget with per-try timeouts, the route's request
// timeout, and mirrors; then it is forwarded over HBONE with HTTP/1.1 or
// HTTP/2 upstream and recorded in metrics and the access log.
package httpproxy
