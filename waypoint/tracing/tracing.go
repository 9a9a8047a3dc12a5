package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config configures span export.
type Config struct {
	// Endpoint is the collector's OTLP/gRPC address (host:port). Required.
	Endpoint string
	// Insecure sends spans without TLS.
	Insecure bool
	// ServiceName names the waypoint in its spans (service.name).
	ServiceName string
	// Attributes are added to the resource (namespace, pod...).
	Attributes map[string]string
	// BatchTimeout bounds how long a span waits before export (default 5 s).
	BatchTimeout time.Duration
}

// Exporter starts request spans and exports them. It is safe for
// concurrent use.
type Exporter struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TraceContext
}

// New starts an exporter; Shutdown flushes and stops it. The collector is
// dialled lazily, so New does not fail when it is down.
func New(ctx context.Context, cfg Config) (*Exporter, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("tracing: endpoint required")
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("otlp exporter: %w", err)
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	for k, v := range cfg.Attributes {
		attrs = append(attrs, attribute.String(k, v))
	}
	if cfg.BatchTimeout == 0 {
		cfg.BatchTimeout = 5 * time.Second
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(cfg.BatchTimeout)),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
	)
	return &Exporter{provider: tp, tracer: tp.Tracer("github.com/weftmesh/weft/waypoint")}, nil
}

// Start begins the waypoint's span for r, named name, as a child of r's
// traceparent (a new trace when it has none or an invalid one, in which case
// tracestate is dropped), and rewrites r's traceparent and tracestate so the
// upstream request is the span's child. It returns the trace id and the
// function that ends the span with the response status and error.
func (e *Exporter) Start(r *http.Request, name string) (string, func(status int, err error)) {
	carrier := propagation.HeaderCarrier(r.Header)
	parent := e.prop.Extract(context.Background(), carrier)
	if !trace.SpanContextFromContext(parent).IsValid() {
		r.Header.Del("Tracestate")
	}
	ctx, span := e.tracer.Start(parent, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", r.Host), attribute.String("network.protocol.version", r.Proto),
	))
	e.prop.Inject(ctx, carrier)
	return span.SpanContext().TraceID().String(), func(status int, err error) {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if err != nil || status >= 500 || status == 0 {
			msg := http.StatusText(status)
			if err != nil {
				msg = err.Error()
			}
			span.SetStatus(codes.Error, msg)
		}
		span.End()
	}
}

// Shutdown exports the spans still buffered, bounded by ctx, and stops.
func (e *Exporter) Shutdown(ctx context.Context) error { return e.provider.Shutdown(ctx) }
