// Package tracing exports the waypoint's spans over OTLP/gRPC
// (go.opentelemetry.io/otel). It is off unless an endpoint is configured;
// when on, each request gets a server span that continues the incoming W3C
// trace context (or starts a trace, honouring the parent's sampled flag),
// and the request goes upstream with that span as its parent.
package tracing
