// Package telemetry is the waypoint's observability: Istio's L7 metrics
// (istio_requests_total, istio_request_duration_milliseconds,
// istio_request_bytes, istio_response_bytes) and TCP metrics with Istio's
// labels and reporter="waypoint", one JSON access-log record per request or
// TCP connection, and W3C trace-context propagation (traceparent is
// continued with a new span, or started when absent; tracestate and baggage
// pass through).
package telemetry
