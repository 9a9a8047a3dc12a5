// Package retry holds the waypoint's retry logic for one route: which
// outcomes of an attempt are retried (from l7api.RetryPolicy's codes and
// retry_on conditions), the jittered exponential back-off between
// attempts, a per-backend retry Budget that keeps retries to a share of
// the backend's active requests, and Body, which buffers a request body so
// that it can be sent again, up to a limit.
package retry
