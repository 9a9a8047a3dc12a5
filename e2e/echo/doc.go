// Package echo is the lab's sample workload: a server that tells the caller
// who answered and what arrived, and a client to call it from inside a pod.
//
// The server speaks raw TCP (a JSON identity line, then an echo of every
// byte), UDP (one datagram back per datagram: a JSON identity line, then
// the payload), HTTP/1.1 and cleartext HTTP/2 (h2c, prior knowledge) on one port,
// gRPC (GRPCMethod, plus the standard health service), and optionally HTTPS
// with client certificates. Every reply is a JSON Reply naming the serving
// pod (from the downward-API environment), the request's method, path,
// protocol and headers (gRPC metadata), the source address and the TLS peer.
// /healthz answers 200 for probes. For L7 tests the HTTP server takes
// status=N, delay=D and fail=P (a random share of failures) query
// parameters, gRPC has a server-streaming method (GRPCStreamMethod), and
// the client can run calls concurrently and print one Summary (status
// codes, serving pods and versions, errors, latency) instead of a line per
// call.
package echo
