// Package telemetry sets up OpenTelemetry for pdp serve: traces exported
// over OTLP when the standard OTEL_* variables ask for it, metrics served
// to Prometheus, and logs that carry trace ids.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
)

// Options configure Setup.
type Options struct {
	ServiceVersion string
	// Metrics turns on the meter provider and the Prometheus registry.
	Metrics bool
}

// Telemetry holds the providers; nothing here is global.
type Telemetry struct {
	Tracer     trace.TracerProvider
	Meter      metric.MeterProvider
	Propagator propagation.TextMapPropagator
	registry   *promclient.Registry
	rpc        *rpcMetrics // set by ServerOptions when metrics are on
	shutdown   []func(context.Context) error
}

// TracingConfigured reports whether the environment asks for traces: an
// OTLP endpoint or an explicit OTEL_TRACES_EXPORTER other than "none".
func TracingConfigured() bool {
	if e := os.Getenv("OTEL_TRACES_EXPORTER"); e != "" {
		return e != "none"
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup builds the providers. Tracing is off unless TracingConfigured;
// export is batched, so it never sits on the request path.
func Setup(ctx context.Context, opts Options) (*Telemetry, error) {
	t := &Telemetry{
		Tracer:     tracenoop.NewTracerProvider(),
		Meter:      metricnoop.NewMeterProvider(),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceVersion(opts.ServiceVersion)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	if os.Getenv("OTEL_SERVICE_NAME") == "" {
		res, _ = resource.Merge(res, resource.NewSchemaless(semconv.ServiceName("agentpdp")))
	}
	if TracingConfigured() {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("trace exporter: %w", err)
		}
		// The sampler comes from OTEL_TRACES_SAMPLER (default: parent-based, always on).
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		t.Tracer = tp
		t.shutdown = append(t.shutdown, tp.Shutdown)
	}
	if opts.Metrics {
		t.registry = promclient.NewRegistry()
		exp, err := prometheus.New(prometheus.WithRegisterer(t.registry), prometheus.WithoutScopeInfo())
		if err != nil {
			return nil, fmt.Errorf("prometheus exporter: %w", err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
		t.Meter = mp
		t.shutdown = append(t.shutdown, mp.Shutdown)
	}
	return t, nil
}

// ServerOptions instrument a gRPC server: a span per RPC, trace context
// taken from the caller (otelgrpc), and the RPC duration histogram
// (rpcMetrics, which records it in otelgrpc's place).
func (t *Telemetry) ServerOptions() ([]grpc.ServerOption, error) {
	m, err := t.rpcMetrics()
	if err != nil {
		return nil, fmt.Errorf("rpc metrics: %w", err)
	}
	return []grpc.ServerOption{grpc.StatsHandler(&rpcHandler{metrics: m, spans: otelgrpc.NewServerHandler(
		otelgrpc.WithTracerProvider(t.Tracer),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithPropagators(t.Propagator))})}, nil
}

// rpcMetrics returns the RPC duration metric, made on first use; nil when
// metrics are off.
func (t *Telemetry) rpcMetrics() (*rpcMetrics, error) {
	if _, off := t.Meter.(metricnoop.MeterProvider); off || t.rpc != nil {
		return t.rpc, nil
	}
	m, err := newRPCMetrics(t.Meter)
	if err != nil {
		return nil, err
	}
	t.rpc = m
	// First at shutdown: what it still holds goes in before the meter
	// provider stops.
	t.shutdown = append([]func(context.Context) error{func(context.Context) error { m.rec.close(); return nil }},
		t.shutdown...)
	return m, nil
}

// Flush returns once every RPC duration measured so far is recorded.
func (t *Telemetry) Flush() {
	if t.rpc != nil {
		t.rpc.rec.flush()
	}
}

// MetricsHandler serves /metrics; nil when metrics are off.
func (t *Telemetry) MetricsHandler() http.Handler {
	if t.registry == nil {
		return nil
	}
	// OpenMetrics, when the scraper asks for it, carries the exemplars: the
	// trace of a sampled decision beside its latency bucket and count.
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// Shutdown flushes pending spans and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}
