// Package server assembles istiod-lite: Kubernetes informers feeding the
// ambient model, the delta xDS server and the CA on one TLS gRPC port
// (15012), an optional plaintext xDS port (15010, tests only), and the
// monitoring port (15014: /ready, /healthz, /metrics), with debug dumps on
// a localhost-only address. It also tunes the Go runtime for a small
// footprint: a soft memory limit from the container's, a laxer garbage
// collector during the initial sync and a strict one after, and memory
// returned to the operating system after the start-up and after bursts of
// clients connecting.
package server
