package telemetry

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/agentpdp/agentpdp/internal/testutil/loopback"
)

func TestMetricsServedToPrometheus(t *testing.T) {
	tel, err := Setup(context.Background(), Options{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	m, err := NewMetrics(tel.Meter, Gauges{
		PolicyVersion:   func() string { return "abc123" },
		AuditQueueDepth: func() int64 { return 7 },
		Suspensions:     func(context.Context) int64 { return 2 },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.Decided(ctx, "DENY", "DENY", "ENFORCE", "email-agent", "gmail.send", 0.0001)
	m.Decided(ctx, "DENY", "DENY", "ENFORCE", "email-agent", "gmail.send", 0.0001)
	m.RateLimited(ctx, "email-agent", "sends-per-hour")
	m.Reloaded(false)
	m.Flush()
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`agentpdp_decisions_total{agent="email-agent",decision="DENY",mode="ENFORCE",policy_decision="DENY",tool="gmail.send"} 2`,
		`agentpdp_ratelimit_rejections_total{limit="sends-per-hour",policy="email-agent"} 1`,
		`agentpdp_policy_reloads_total{result="error"} 1`,
		`agentpdp_policy_info{version="abc123"} 1`,
		`agentpdp_audit_queue_depth 7`,
		`agentpdp_suspensions 2`,
		`agentpdp_decision_duration_seconds_count{decision="DENY"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

func TestTracingOffWithoutEnvironment(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
	if TracingConfigured() {
		t.Fatal("tracing on with no OTEL_* variables")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	if !TracingConfigured() {
		t.Fatal("tracing off with an OTLP endpoint set")
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	if TracingConfigured() {
		t.Fatal("OTEL_TRACES_EXPORTER=none must turn tracing off")
	}
}

func TestLogsCarryTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(TraceHandler{slog.NewJSONHandler(&buf, nil)})
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	span.End()
	log.Info("outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(lines[0], `"trace_id":"`+span.SpanContext().TraceID().String()+`"`) {
		t.Fatalf("no trace id: %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Fatalf("trace id outside a span: %s", lines[1])
	}
}

// TestRPCDurationServed checks the RPC histogram dashboards read: otelgrpc's
// name and labels, sub-millisecond buckets, and calls to methods the server
// lacks kept out of the labels.
func TestRPCDurationServed(t *testing.T) {
	tel, err := Setup(context.Background(), Options{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	opts, err := tel.ServerOptions()
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	conn := loopback.Serve(t, srv)
	ctx := context.Background()
	for range 3 {
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown health service: %v, want NotFound", err)
	}
	for _, m := range []string{"/attacker.Made/UpOne", "/attacker.Made/UpTwo"} {
		if err := conn.Invoke(ctx, m, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}); status.Code(err) != codes.Unimplemented {
			t.Fatalf("%s: %v, want Unimplemented", m, err)
		}
	}
	wants := []string{
		`rpc_server_call_duration_seconds_count{rpc_method="grpc.health.v1.Health/Check",rpc_response_status_code="OK",rpc_system_name="grpc"} 3`,
		`rpc_server_call_duration_seconds_bucket{rpc_method="grpc.health.v1.Health/Check",rpc_response_status_code="OK",rpc_system_name="grpc",le="0.00025"}`,
		// The caller's error: a status code, no error.type.
		`rpc_server_call_duration_seconds_count{rpc_method="grpc.health.v1.Health/Check",rpc_response_status_code="NOT_FOUND",rpc_system_name="grpc"} 1`,
	}
	// A call is counted once its status is sent, which can be just after
	// the client has its answer: scrape until the counts arrive.
	var body string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rec := httptest.NewRecorder()
		tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		body = string(b)
		missing := slices.DeleteFunc(slices.Clone(wants), func(w string) bool { return strings.Contains(body, w) })
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q; /metrics:\n%s", missing, body)
		}
	}
	if strings.Contains(body, "attacker") {
		t.Errorf("an unknown method's name became a label value:\n%s", body)
	}
}

// TestMetricsOffIsNil: with metrics off there is nothing to record, so a
// decision does not even look its labels up; a nil *Metrics does nothing.
func TestMetricsOffIsNil(t *testing.T) {
	m, err := NewMetrics(metricnoop.NewMeterProvider(), Gauges{})
	if err != nil || m != nil {
		t.Fatalf("NewMetrics(noop) = %v, %v; want nil, nil", m, err)
	}
	m.Decided(context.Background(), "ALLOW", "ALLOW", "ENFORCE", "a", "t", 0.001)
	m.RateLimited(context.Background(), "p", "l")
	m.Reloaded(true)
	m.Flush()
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestExemplarsCarryTheTrace: a scraper that asks for OpenMetrics gets the
// trace of a sampled decision beside its count and latency bucket, the link
// from a dashboard's spike to the trace in Jaeger; the classic text format,
// which has no place for it, is unchanged.
func TestExemplarsCarryTheTrace(t *testing.T) {
	tel, err := Setup(context.Background(), Options{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	m, err := NewMetrics(tel.Meter, Gauges{})
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	ctx, span := tp.Tracer("test").Start(context.Background(), "pdp.decide")
	m.Decided(ctx, "ALLOW", "ALLOW", "ENFORCE", "email-agent", "gmail.send", 0.0001)
	span.End()
	m.Flush()
	scrape := func(accept string) string {
		req := httptest.NewRequest("GET", "/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		rec := httptest.NewRecorder()
		tel.MetricsHandler().ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Body)
		return string(b)
	}
	// The exemplar's labels come in either order.
	traceID := `trace_id="` + span.SpanContext().TraceID().String() + `"`
	spanID := `span_id="` + span.SpanContext().SpanID().String() + `"`
	om := scrape("application/openmetrics-text; version=1.0.0")
	for _, series := range []string{`agentpdp_decisions_total{agent="email-agent"`, `agentpdp_decision_duration_seconds_bucket{decision="ALLOW",le="0.0001"}`} {
		if !containsLine(om, series, " # {", traceID, spanID) {
			t.Errorf("OpenMetrics: no %s line with exemplar %s %s:\n%s", series, traceID, spanID, om)
		}
	}
	if text := scrape(""); strings.Contains(text, "trace_id") || !strings.Contains(text, "agentpdp_decisions_total{") {
		t.Errorf("classic text format changed:\n%s", text)
	}
}

// containsLine reports whether one line of body starts with prefix and
// holds every part.
func containsLine(body, prefix string, parts ...string) bool {
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, prefix) && !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}
